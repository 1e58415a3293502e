/** A message people read where it happened: the API's words, or a form's. */
export function Alert({ message }: { message: string | null }) {
  return message ? (
    <p role="alert" className="error">
      {message}
    </p>
  ) : null;
}
