// Click-to-call (KAW 12.4): kolokol rings the operator's own phone, and once it answers
// dials the number through their trunk; the softphone answers that leg by itself.
import { api, ok } from "@/api/client";
import { usePhone } from "./phone";

export async function clickToCall(to: string): Promise<string> {
  // Armed before asking: the INVITE to this phone may come before the answer does.
  usePhone().expectClickToCall(to);
  const placed = await ok(api.POST("/api/v1/calls", { body: { to } }));
  return placed.call_id;
}
