/** Placeholder. */
export function CreateView() {
  return (
    <section>
      <h1>Create</h1>
    </section>
  );
}
