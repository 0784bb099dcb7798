// How numbers, money, times and latencies are written everywhere on the dashboard.

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function count(value: number): string {
  return integer.format(value);
}

export function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

export function usd(value: number): string {
  if (value === 0) return "$0.00";
  if (Math.abs(value) < 0.01) return `$${value.toFixed(6)}`;
  return `$${value.toFixed(2)}`;
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  return `${value.toFixed(value < 10 ? 1 : 0)} ms`;
}

export function similarity(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : value.toFixed(4);
}

export function time(epochSeconds: number | null | undefined): string {
  if (epochSeconds === null || epochSeconds === undefined) return "never";
  const date = new Date(epochSeconds * 1000);
  return date.toLocaleString("en-GB", {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function bucketLabel(epochSeconds: number, bucket: "hour" | "day"): string {
  const date = new Date(epochSeconds * 1000);
  return bucket === "day"
    ? date.toLocaleDateString("en-GB", { month: "short", day: "2-digit" })
    : date.toLocaleString("en-GB", { month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

export function shortId(value: string | null | undefined, length = 8): string {
  return value ? value.slice(0, length) : "–";
}

// A datetime-local input's value (local time) as epoch seconds, or undefined when empty.
export function fromLocalInput(value: string): number | undefined {
  if (!value) return undefined;
  const epoch = new Date(value).getTime();
  return Number.isNaN(epoch) ? undefined : epoch / 1000;
}
