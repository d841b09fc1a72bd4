/**
 * The guest view's seam (owned by the guest view's author, ui/README.md):
 * the shell renders <GuestView id=…/> for #/guests/ID. This placeholder
 * shows the guest's live record and its jobs.
 */
import { useShell } from '../shell.js';
import { useStore } from '../store/observable.js';
import { guestName } from '../api/types.js';

export function GuestView({ id }: { id: string }) {
  const { live } = useShell();
  const guests = useStore(live.guests);
  const jobs = useStore(live.jobs);
  const guest = guests.get(id);
  if (!guest) {
    return (
      <section>
        <h1>Guest {id}</h1>
        <p>{guests.loaded ? 'No such guest on this host (it may have been deleted).' : 'Loading…'}</p>
        <p>
          <a href="#/">Back to the guests</a>
        </p>
      </section>
    );
  }
  return (
    <section>
      <h1>{guestName(guest)}</h1>
      <dl class="facts">
        <dt>State</dt>
        <dd>
          <span class={`state state-${guest.state}`}>{guest.state}</span>
        </dd>
        <dt>Id</dt>
        <dd>
          <code>{guest.id}</code>
        </dd>
        <dt>CPUs</dt>
        <dd>{guest.cpu}</dd>
        <dt>Memory</dt>
        <dd>{guest.memory} MiB</dd>
      </dl>
      <h2>Jobs</h2>
      <ul>
        {jobs.forGuest(id).slice(0, 20).map((job) => (
          <li key={job.ID}>
            {job.Action}: {job.Status} {job.Message}
          </li>
        ))}
      </ul>
    </section>
  );
}
