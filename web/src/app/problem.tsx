import { ApiError } from "@/api/client";

import { Alert } from "./alert";

/** An API error as people read it: its message, never a stack. */
export function Problem({ error }: { error: unknown }) {
  return (
    <Alert
      message={error instanceof ApiError ? error.message : "Something went wrong on our side. Try again in a moment."}
    />
  );
}
