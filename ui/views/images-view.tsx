/**
 * Images (#/images): the disk images (and container images, when a plugin
 * serves them) on this host; fetch one from a URL (a job: its progress is
 * the job's Message, polled while it runs), upload a file (PUT, with the
 * browser's upload progress), delete one (refused while a guest uses it:
 * the agent's message says which).
 */
import { useEffect, useState } from 'preact/hooks';
import type { Image } from '../api/types.js';
import { useShell } from '../shell.js';
import { useStore } from '../store/observable.js';
import { ImageForms } from './image-forms.js';

export function ImagesView() {
  const { api, live } = useShell();
  const jobs = useStore(live.jobs);
  const [images, setImages] = useState<Image[]>();
  const [containers, setContainers] = useState<Image[]>();
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<{ error: boolean; text: string }>();

  const reload = async () => {
    try {
      setImages(await api.images());
      setError(undefined);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
    // Container images exist only where a plugin serves them (else 501): no error for that.
    api.images('container').then(setContainers, () => setContainers(undefined));
  };

  // Any host job ending (a fetch, an upload's end, a delete) may change the list.
  const hostJobsDone = jobs
    .list()
    .filter((j) => j.GuestID === '' && (j.Status === 'Complete' || j.Status === 'Error'))
    .map((j) => j.ID)
    .join(',');
  useEffect(() => {
    void reload();
  }, [hostJobsDone]);

  const remove = async (image: Image) => {
    if (!window.confirm(`Delete image ${image.id}?`)) return;
    setNotice(undefined);
    try {
      const type = image.type === 'container' ? '?type=container' : '';
      const queued = await api.queue('DELETE', `/images/${encodeURIComponent(image.id)}${type}`);
      setNotice({ error: false, text: `Deleting ${image.id} (job ${queued.jobId?.slice(0, 8) ?? '?'})` });
    } catch (e) {
      setNotice({ error: true, text: `Could not delete ${image.id}: ${e instanceof Error ? e.message : String(e)}` });
    }
  };

  const all = [...(images ?? []), ...(containers ?? [])];
  return (
    <section>
      <h1>Images</h1>
      <ImageForms onChange={() => void reload()} containers={containers !== undefined} />
      {error && (
        <p class="error" role="alert">
          Could not list the images: {error}
        </p>
      )}
      {notice && (
        <p class={notice.error ? 'error' : 'notice'} role={notice.error ? 'alert' : 'status'}>
          {notice.text}
        </p>
      )}
      <table class="plain">
        <caption class="muted">{images === undefined && !error ? 'Loading…' : `${all.length} images`}</caption>
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Type</th>
            <th scope="col">Size</th>
            <th scope="col">Status</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {all.map((image) => (
            <tr key={`${image.type}/${image.id}`}>
              <th scope="row">{image.id}</th>
              <td>{image.type}</td>
              <td>{image.size} MiB</td>
              <td>{image.status}</td>
              <td>
                <button type="button" class="small" onClick={() => void remove(image)} aria-label={`Delete image ${image.id}`} disabled={image.status !== 'complete'}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
