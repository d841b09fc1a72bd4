/** Placeholder. */
export function ImagesView() {
  return (
    <section>
      <h1>Images</h1>
    </section>
  );
}
