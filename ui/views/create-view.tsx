/**
 * Create a guest (#/create): a virtual machine (its disk made from an image
 * of the list, or blank) or a container (a container image). POST /guests
 * boots it unless "start" is unticked; the page then opens the new guest,
 * whose create job shows its progress there.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Image } from '../api/types.js';
import { navigate } from '../router.js';
import { useShell } from '../shell.js';

type Kind = 'vm' | 'container';

export function CreateView() {
  const { api, live } = useShell();
  const [kind, setKind] = useState<Kind>('vm');
  const [name, setName] = useState('');
  const [cpu, setCpu] = useState(1);
  const [memory, setMemory] = useState(512);
  const [disk, setDisk] = useState(1024);
  const [image, setImage] = useState('');
  const [start, setStart] = useState(true);
  const [images, setImages] = useState<Image[] | undefined>();
  const [imageError, setImageError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  useEffect(() => {
    setImages(undefined);
    setImage('');
    setImageError(undefined);
    api.images(kind === 'container' ? 'container' : undefined).then(
      (list) => setImages(list.filter((i) => i.status === 'complete')),
      (e: Error) => setImageError(e.message),
    );
  }, [kind]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const disks = kind === 'container' ? [] : [image === '' ? { size: disk } : { image }];
    const body = {
      type: kind === 'container' ? 'container' : '',
      cpu,
      memory,
      image: kind === 'container' ? image : '',
      disks,
      nics: [{}],
      metadata: name.trim() === '' ? {} : { name: name.trim() },
    };
    try {
      const created = await api.queue<{ id: string }>('POST', `/guests${start ? '' : '?start=false'}`, body);
      if (created.jobId) void api.job(created.jobId).then((job) => live.jobs.put(job), () => undefined);
      navigate({ view: 'guest', id: created.body.id });
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <section>
      <h1>Create a guest</h1>
      <div class="panel">
        <form class="stack" onSubmit={submit} aria-describedby={error ? 'create-error' : undefined}>
          <fieldset>
            <legend>Kind</legend>
            <label class="check">
              <input type="radio" name="kind" value="vm" checked={kind === 'vm'} onChange={() => setKind('vm')} />
              Virtual machine
            </label>
            <label class="check">
              <input type="radio" name="kind" value="container" checked={kind === 'container'} onChange={() => setKind('container')} />
              Container
            </label>
          </fieldset>
          <label>
            Name
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="web-1" maxLength={200} />
          </label>
          <label>
            CPUs
            <input type="number" min={1} max={512} required value={cpu} onInput={(e) => setCpu(Number(e.currentTarget.value))} />
          </label>
          <label>
            Memory (MiB)
            <input type="number" min={1} step={1} required value={memory} onInput={(e) => setMemory(Number(e.currentTarget.value))} />
          </label>
          <label>
            {kind === 'vm' ? 'Disk image' : 'Container image'}
            <select value={image} onChange={(e) => setImage(e.currentTarget.value)} required={kind === 'container'} aria-describedby="image-help">
              {kind === 'vm' && <option value="">blank disk</option>}
              {kind === 'container' && <option value="">choose…</option>}
              {(images ?? []).map((i) => (
                <option key={i.id} value={i.id}>
                  {i.id} ({i.size} MiB)
                </option>
              ))}
            </select>
          </label>
          {kind === 'vm' && image === '' && (
            <label>
              Disk size (MiB)
              <input type="number" min={1} required value={disk} onInput={(e) => setDisk(Number(e.currentTarget.value))} />
            </label>
          )}
          <label class="check">
            <input type="checkbox" checked={start} onChange={(e) => setStart(e.currentTarget.checked)} />
            Start it once created
          </label>
          <button type="submit" disabled={busy}>
            {busy ? 'Creating…' : 'Create'}
          </button>
        </form>
        <p id="image-help" class="muted">
          {imageError
            ? `The image list is unavailable: ${imageError}`
            : images === undefined
              ? 'Loading images…'
              : images.length === 0
                ? <>No {kind === 'container' ? 'container ' : ''}images on this host yet: <a href="#/images">fetch or upload one</a>.</>
                : `${images.length} image${images.length === 1 ? '' : 's'} on this host.`}
        </p>
        {error && (
          <p id="create-error" class="error" role="alert">
            The agent refused the guest: {error}
          </p>
        )}
      </div>
    </section>
  );
}
