// Moments and days as the operator reads them: the contact center's time zone (from
// GET /api/v1/me; reports and History count its days), this browser's until it is known.
import { format } from "date-fns";
import { TZDate } from "@date-fns/tz";
import { useSession } from "@/stores/session";

function zone(): string {
  return useSession().me?.time_zone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
}

export function formatMoment(ms: number): string {
  return format(new TZDate(ms, zone()), "dd.MM.yy HH:mm:ss");
}

/** A day `days` before today in the contact center's zone, as yyyy-MM-dd. */
export function daysAgo(days: number): string {
  return format(new TZDate(Date.now() - days * 86_400_000, zone()), "yyyy-MM-dd");
}

export const today = () => daysAgo(0);

/** A talk's length as H:MM:SS (KAW's History shows 0:00:07). */
export function duration(ms?: number | null): string {
  const s = Math.round((ms ?? 0) / 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}
