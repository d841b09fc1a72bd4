/** Placeholder. */
export function FleetView() {
  return (
    <section>
      <h1>Fleet</h1>
    </section>
  );
}
