// Times as people read them: in the viewer's own zone, with the zone named, relative to
// now ("in 3 min", "5 s ago"), and in a schedule's zone on hover. The API speaks UTC.

const VIEWER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

const formats = new Map();

function format(zone, withZoneName = true) {
  const key = `${zone}|${withZoneName}`;
  if (!formats.has(key)) {
    formats.set(
      key,
      new Intl.DateTimeFormat("en-GB", {
        timeZone: zone,
        year: "numeric",
        month: "short",
        day: "numeric",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hourCycle: "h23",
        ...(withZoneName ? { timeZoneName: "short" } : {}),
      }),
    );
  }
  return formats.get(key);
}

export function viewerZone() {
  return VIEWER_ZONE;
}

// "5 Dec 2026, 15:40:12 CET" in `zone` (the viewer's by default).
export function inZone(iso, zone = VIEWER_ZONE) {
  if (!iso) return "";
  try {
    return format(zone).format(new Date(iso));
  } catch {
    return format("UTC").format(new Date(iso));
  }
}

const UNITS = [
  ["day", 86400],
  ["h", 3600],
  ["min", 60],
  ["s", 1],
];

// "in 3 min", "12 s ago", "now".
export function relative(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const size = Math.abs(seconds);
  if (size < 1) return "now";
  const [unit, length] = UNITS.find(([, length]) => size >= length) || UNITS[UNITS.length - 1];
  const count = Math.floor(size / length);
  const words = `${count} ${unit}${unit === "day" && count > 1 ? "s" : ""}`;
  return seconds > 0 ? `in ${words}` : `${words} ago`;
}

// "850 ms", "1.2 s", "3 min 20 s".
export function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60000);
  const seconds = Math.round((ms % 60000) / 1000);
  if (minutes < 60) return `${minutes} min ${seconds} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// A datetime-local input's value (the viewer's wall time) as UTC ISO text.
export function localInputToIso(value) {
  return value ? new Date(value).toISOString() : null;
}

// An instant as a datetime-local input's value, in the viewer's zone.
export function isoToLocalInput(iso) {
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}
