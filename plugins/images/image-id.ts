/**
 * Image ids are file names in the images folder. Anything that could reach
 * outside it (slashes, `..`, NUL) or hide as a temporary file (a leading
 * dot) is refused, so an id from the API can never name another host file.
 */
const IMAGE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** Why `id` is not a usable image id, or undefined when it is. */
export function invalidImageId(id: string): string | undefined {
  if (IMAGE_ID.test(id) && !id.includes('..')) return undefined;
  return `image id "${id}" must be 1-255 letters, digits, ".", "_" or "-", start with a letter or digit and contain no ".."`;
}
