/**
 * A guest's metadata, edited as a table of keys and values and saved as one
 * PATCH /guests/{id}/metadata of what changed: a changed or new key with its
 * string value, a removed key with "" (what a Go client holding a
 * map[string]string sends to remove one; null means the same to the agent).
 * The table is read again from the agent's answer, the merged map.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { getJson, guestPath, messageOf, type AgentRequest } from './guest-client.js';

interface Row {
  /** The key as the agent has it ("" for a row added here). */
  original: string;
  key: string;
  value: string;
  removed: boolean;
}

const rowsOf = (metadata: Record<string, string>): Row[] =>
  Object.keys(metadata)
    .sort()
    .map((key) => ({ original: key, key, value: metadata[key], removed: false }));

/** The patch that turns `saved` into the table: only what differs. */
export function metadataPatch(saved: Record<string, string>, rows: Row[]): Record<string, string> {
  const patch: Record<string, string> = {};
  const kept = new Set<string>();
  for (const row of rows) {
    const key = row.key.trim();
    if (row.removed || key === '') continue;
    kept.add(key);
    if (saved[key] !== row.value) patch[key] = row.value;
  }
  for (const key of Object.keys(saved)) if (!kept.has(key)) patch[key] = '';
  return patch;
}

export function MetadataPanel({ guestId, request, version }: { guestId: string; request: AgentRequest; version: number }) {
  const [saved, setSaved] = useState<Record<string, string>>({});
  const [rows, setRows] = useState<Row[]>([]);
  const [status, setStatus] = useState<{ error?: string; note?: string }>({});
  const [dirty, setDirty] = useState(false);
  const [focusNew, setFocusNew] = useState(0);
  const table = useRef<HTMLTableSectionElement>(null);

  // Keyboard users go on typing the new key, as soon as Preact drew its row.
  useLayoutEffect(() => {
    if (focusNew > 0) table.current?.querySelector<HTMLInputElement>('tr:last-child input[name="key"]')?.focus();
  }, [focusNew]);

  // Read on open, and again when the guest changed elsewhere unless edits are pending.
  useEffect(() => {
    if (dirty) return;
    let stopped = false;
    getJson<Record<string, string>>(request, guestPath(guestId, '/metadata'))
      .then((metadata) => {
        if (stopped) return;
        setSaved(metadata);
        setRows(rowsOf(metadata));
      })
      .catch((error) => !stopped && setStatus({ error: messageOf(error) }));
    return () => {
      stopped = true;
    };
  }, [guestId, request, version]);

  const edit = (index: number, change: Partial<Row>) => {
    setDirty(true);
    setRows((list) => list.map((row, i) => (i === index ? { ...row, ...change } : row)));
  };

  const save = async (event: Event) => {
    event.preventDefault();
    const patch = metadataPatch(saved, rows);
    if (Object.keys(patch).length === 0) return setStatus({ note: 'Nothing changed.' });
    try {
      const merged = await getJson<Record<string, string>>(request, guestPath(guestId, '/metadata'), 'PATCH', patch);
      setSaved(merged);
      setRows(rowsOf(merged));
      setDirty(false);
      setStatus({ note: `Saved ${Object.keys(patch).length} change${Object.keys(patch).length === 1 ? '' : 's'}.` });
    } catch (error) {
      setStatus({ error: messageOf(error) });
    }
  };

  const addRow = () => {
    setDirty(true);
    setRows((list) => [...list, { original: '', key: '', value: '', removed: false }]);
    setFocusNew((n) => n + 1);
  };

  const revert = () => {
    setRows(rowsOf(saved));
    setDirty(false);
    setStatus({});
  };

  return (
    <section class="guest-metadata panel" aria-labelledby="guest-metadata-title">
      <h2 id="guest-metadata-title">Metadata</h2>
      <form onSubmit={save}>
        <table class="plain">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Value</th>
              <th scope="col">
                <span class="sr-only">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody ref={table}>
            {rows.map((row, i) => (
              <tr key={i} class={row.removed ? 'removed' : undefined} data-key={row.original || undefined}>
                <td>
                  {row.original ? (
                    <code>{row.key}</code>
                  ) : (
                    <input aria-label={`Key of new entry ${i + 1}`} name="key" value={row.key} maxLength={256} onInput={(e) => edit(i, { key: e.currentTarget.value })} />
                  )}
                </td>
                <td>
                  <input aria-label={`Value of ${row.key || `new entry ${i + 1}`}`} name="value" value={row.value} disabled={row.removed} onInput={(e) => edit(i, { value: e.currentTarget.value })} />
                </td>
                <td>
                  <button type="button" aria-pressed={row.removed} onClick={() => edit(i, { removed: !row.removed })}>
                    {row.removed ? 'Keep' : 'Remove'}
                    <span class="sr-only"> {row.key || `new entry ${i + 1}`}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <p class="guest-form-buttons">
          <button type="button" onClick={addRow}>
            Add a key
          </button>{' '}
          <button type="submit">Save metadata</button>{' '}
          <button type="button" onClick={revert} disabled={!dirty}>
            Revert
          </button>
        </p>
      </form>
      <p role="status" class={status.error ? 'error' : 'muted'}>
        {status.error ?? status.note ?? (dirty ? 'Unsaved changes.' : '')}
      </p>
    </section>
  );
}
