/**
 * The images page's two ways to add an image, each with live progress:
 * fetch from a URL (POST /images queues a job whose Message reads
 * "transferring: N of M bytes (P%)"; polled each second while it runs) and
 * upload a file from this computer (PUT /images/ID, the browser's upload
 * progress). Progress bars are labelled for screen readers.
 */
import { useEffect, useState } from 'preact/hooks';
import { useShell } from '../shell.js';
import { useStore } from '../store/observable.js';

interface Transfer {
  key: string;
  label: string;
  /** 0..1, or undefined while unknown. */
  done?: number;
  text: string;
  state: 'running' | 'complete' | 'failed';
  jobId?: string;
}

/** "transferring: 1048576 of 67108864 bytes (1%)" -> 0.0156; undefined when the message has no counts. */
export function transferShare(message: string): number | undefined {
  const counts = /(\d+) of (\d+) bytes/.exec(message);
  if (counts && Number(counts[2]) > 0) return Number(counts[1]) / Number(counts[2]);
  const percent = /\((\d+(?:\.\d+)?)%\)/.exec(message);
  return percent ? Number(percent[1]) / 100 : undefined;
}

export function ImageForms({ onChange, containers }: { onChange: () => void; containers: boolean }) {
  const { api, live } = useShell();
  const jobs = useStore(live.jobs);
  const [transfers, setTransfers] = useState<Transfer[]>([]);
  const update = (key: string, change: Partial<Transfer>) => setTransfers((list) => list.map((t) => (t.key === key ? { ...t, ...change } : t)));

  // Fetch jobs: follow each running one until it ends (events give the end, polling the progress).
  const running = transfers.filter((t) => t.jobId && t.state === 'running');
  useEffect(() => {
    if (running.length === 0) return;
    const timer = setInterval(() => {
      for (const t of running) void api.job(t.jobId!).then((job) => live.jobs.put(job), () => undefined);
    }, 1000);
    return () => clearInterval(timer);
  }, [running.map((t) => t.key).join(',')]);
  useEffect(() => {
    for (const t of running) {
      const job = jobs.get(t.jobId!);
      if (!job) continue;
      if (job.Status === 'Complete') update(t.key, { state: 'complete', done: 1, text: 'fetched' });
      else if (job.Status === 'Error') update(t.key, { state: 'failed', text: job.Message });
      else update(t.key, { done: transferShare(job.Message) ?? t.done, text: job.Message || job.Status.toLowerCase() });
    }
  }, [jobs.version]);

  const [source, setSource] = useState('');
  const [fetchId, setFetchId] = useState('');
  const [sha, setSha] = useState('');
  const [fetchType, setFetchType] = useState('');
  const startFetch = async (e: Event) => {
    e.preventDefault();
    const key = `fetch-${Date.now()}`;
    const id = fetchId.trim();
    setTransfers((list) => [{ key, label: `Fetch ${id}`, text: 'queued', state: 'running' }, ...list]);
    try {
      const queued = await api.queue('POST', '/images', { id, type: fetchType, source: source.trim(), ...(sha.trim() ? { sha256: sha.trim() } : {}) });
      update(key, { jobId: queued.jobId });
      onChange();
    } catch (err) {
      update(key, { state: 'failed', text: err instanceof Error ? err.message : String(err) });
    }
  };

  const [file, setFile] = useState<File>();
  const [uploadId, setUploadId] = useState('');
  const startUpload = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    const key = `upload-${Date.now()}`;
    const id = uploadId.trim() || file.name.replace(/\.[^.]*$/, '');
    setTransfers((list) => [{ key, label: `Upload ${id}`, text: 'starting', state: 'running', done: 0 }, ...list]);
    try {
      await api.upload(`/images/${encodeURIComponent(id)}`, file, (sent, total) =>
        update(key, { done: total > 0 ? sent / total : undefined, text: sent < total ? `${mib(sent)} of ${mib(total)} sent` : 'checking the image…' }),
      );
      update(key, { state: 'complete', done: 1, text: 'stored' });
    } catch (err) {
      update(key, { state: 'failed', text: err instanceof Error ? err.message : String(err) });
    }
    onChange();
  };

  return (
    <>
      <div class="panel">
        <h2>Fetch from a URL</h2>
        <form class="stack" onSubmit={startFetch}>
          <label>
            Image id
            <input required pattern="[A-Za-z0-9_][A-Za-z0-9._\-]*" value={fetchId} onInput={(e) => setFetchId(e.currentTarget.value)} placeholder="debian-12" />
          </label>
          <label>
            Source URL
            <input type="url" size={40} value={source} onInput={(e) => setSource(e.currentTarget.value)} placeholder="https://…/disk.qcow2 (empty: the image server)" />
          </label>
          <label>
            SHA-256 (optional)
            <input size={20} pattern="[0-9a-fA-F]{64}" value={sha} onInput={(e) => setSha(e.currentTarget.value)} />
          </label>
          {containers && (
            <label>
              Type
              <select value={fetchType} onChange={(e) => setFetchType(e.currentTarget.value)}>
                <option value="">disk image</option>
                <option value="container">container image</option>
              </select>
            </label>
          )}
          <button type="submit">Fetch</button>
        </form>
      </div>
      <div class="panel">
        <h2>Upload a file</h2>
        <form class="stack" onSubmit={startUpload}>
          <label>
            File (raw or qcow2)
            <input type="file" required onChange={(e) => setFile(e.currentTarget.files?.[0])} />
          </label>
          <label>
            Image id
            <input pattern="[A-Za-z0-9_][A-Za-z0-9._\-]*" value={uploadId} onInput={(e) => setUploadId(e.currentTarget.value)} placeholder="the file's name" />
          </label>
          <button type="submit" disabled={!file}>
            Upload
          </button>
        </form>
      </div>
      {transfers.length > 0 && (
        <ul class="transfers" aria-label="Transfers">
          {transfers.map((t) => (
            <li key={t.key} class={`transfer transfer-${t.state}`}>
              <span id={`${t.key}-label`}>{t.label}</span>{' '}
              <progress aria-labelledby={`${t.key}-label`} max={1} value={t.done} />{' '}
              <span role={t.state === 'failed' ? 'alert' : 'status'} class={t.state === 'failed' ? 'error' : undefined}>
                {t.state === 'failed' ? `failed: ${t.text}` : t.text}
              </span>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
