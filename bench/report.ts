// One shape for every benchmark's result, and one printer: rows side by side with the
// raw tool they are compared to, as ratios (atomhost ÷ raw; below 1.0 is faster).

export interface BenchRow {
  label: string;
  /** The measured value (seconds, bytes, MiB, ms...). */
  value: number;
  unit: string;
  /** The same measure for the raw tool, and atomhost's value ÷ it. */
  baseline?: { label: string; value: number };
  ratio?: number;
  goal?: string;
}

export interface BenchResult {
  name: string;
  rows: BenchRow[];
  notes?: string[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function compare(label: string, unit: string, value: number, baselineLabel: string, baseline: number, goal?: string): BenchRow {
  return { label, unit, value, baseline: { label: baselineLabel, value: baseline }, ratio: baseline > 0 ? value / baseline : undefined, goal };
}

const fmt = (v: number, unit: string) => (unit === 's' ? `${(v * 1000).toFixed(1)} ms` : unit === 'bytes' ? `${(v / 1024).toFixed(1)} KiB` : `${v.toFixed(unit === 'ms' ? 1 : 2)} ${unit}`);

export function printResult(r: BenchResult): void {
  console.log(`\n== ${r.name}`);
  for (const row of r.rows) {
    const base = row.baseline ? `   vs ${row.baseline.label}: ${fmt(row.baseline.value, row.unit)}` : '';
    const ratio = row.ratio !== undefined ? `   ratio ${row.ratio.toFixed(2)}×` : '';
    const goal = row.goal ? `   (goal ${row.goal})` : '';
    console.log(`  ${row.label.padEnd(44)} ${fmt(row.value, row.unit).padStart(12)}${base}${ratio}${goal}`);
  }
  for (const n of r.notes ?? []) console.log(`  note: ${n}`);
}
