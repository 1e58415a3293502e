import { ApiError } from "@/api/client";

/** An API error as people read it: its message, never a stack. */
export function Problem({ error }: { error: unknown }) {
  const message =
    error instanceof ApiError ? error.message : "Something went wrong on our side. Try again in a moment.";
  return (
    <p role="alert" className="error">
      {message}
    </p>
  );
}
