// A small client of the Spotless API, written the way the web and mobile apps use their generated
// types: fields a response always carries are read without null/undefined checks. It type-checks
// only if the OpenAPI marks them `required` (nullable ones are `T | null`, never `T | undefined`).
import type { components, operations } from "./generated/openapi";

type Ok<Op extends keyof operations> = operations[Op]["responses"] extends {
  200: { content: { "application/json": infer Body } };
}
  ? Body
  : never;
type Schemas = components["schemas"];

export function firstWorkerName(page: Ok<"listWorkers">): string {
  const total: number = page.total + page.offset + page.limit;
  return `${page.items[0].id} ${page.items[0].name} of ${total}`;
}

export function bookingLine(page: Ok<"listBookings">): string {
  const booking: Schemas["BookingRead"] = page.items[0];
  // Nullable but always sent: `null`, never missing.
  const cancelReason: string | null = booking.cancel_reason;
  const team: string | null = booking.team_id;
  return `${booking.id} ${booking.status} ${booking.starts_at} ${cancelReason ?? ""} ${team ?? ""}`;
}

export function seriesLine(page: Ok<"listSeries">): string {
  const until: string | null = page.items[0].until;
  return `${page.items[0].id} ${until ?? "open-ended"}`;
}

export function tokenType(result: Schemas["TokenPair"]): string {
  return result.token_type.toLowerCase();
}

export function workerContact(worker: Ok<"getWorker">): string {
  // Hidden by permission: honestly absent sometimes, so the generated type makes the client check.
  return worker.phone === undefined ? "not yours to see" : (worker.phone ?? "not set");
}

export function problemFields(problem: Schemas["ProblemDocument"]): string[] {
  return (problem.errors ?? []).map((e) => `${e.field}: ${e.message} (${e.code})`);
}
