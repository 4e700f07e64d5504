// Charts as inline SVG built from DOM nodes: a sparkline for the token table and the usage
// chart of a token's page (accepted items per step, rejected requests on top, and the band
// between the token's baseline and its spike threshold).

import { s, fmtNumber } from './dom.js';

function rejectedOf(p) {
  return Object.values(p.rejected || {}).reduce((a, b) => a + b, 0);
}

/** A 120x24 sparkline of requests per step. */
export function sparkline(points, label) {
  const w = 120;
  const hgt = 24;
  const values = points.map((p) => p.requests || 0);
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const xy = values.map((v, i) => `${(i * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`);
  const svg = s('svg', { class: 'spark', viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, role: 'img', 'aria-label': label },
    s('title', {}, label),
    s('polyline', { points: xy.join(' '), fill: 'none', class: 'spark-line' }));
  return svg;
}

/**
 * The usage chart: one bar per step (accepted items, rejected requests stacked above), and
 * when `band` is given ({low, high} items per step) the shaded band of normal traffic.
 */
export function usageChart(points, stepSeconds, band, label) {
  const w = 640;
  const hgt = 200;
  const pad = { l: 44, r: 8, t: 8, b: 22 };
  const innerW = w - pad.l - pad.r;
  const innerH = hgt - pad.t - pad.b;
  const totals = points.map((p) => (p.items || 0) + rejectedOf(p));
  const max = Math.max(1, ...totals, band ? band.high * 1.1 : 0);
  const y = (v) => pad.t + innerH - (v / max) * innerH;
  const slot = innerW / Math.max(1, points.length);
  const barW = Math.max(1, slot * 0.8);
  const children = [s('title', {}, label)];
  if (band && band.high > 0) {
    children.push(s('rect', {
      class: 'band', x: pad.l, width: innerW,
      y: y(band.high), height: Math.max(1, y(band.low) - y(band.high)),
    }));
    children.push(s('line', { class: 'baseline', x1: pad.l, x2: w - pad.r, y1: y(band.low), y2: y(band.low) }));
  }
  points.forEach((p, i) => {
    const x = pad.l + i * slot + (slot - barW) / 2;
    const items = p.items || 0;
    const rejected = rejectedOf(p);
    if (items > 0) {
      children.push(s('rect', { class: 'bar-items', x, width: barW, y: y(items), height: y(0) - y(items) }));
    }
    if (rejected > 0) {
      children.push(s('rect', { class: 'bar-rejected', x, width: barW, y: y(items + rejected), height: y(items) - y(items + rejected) }));
    }
  });
  children.push(s('line', { class: 'axis', x1: pad.l, x2: w - pad.r, y1: y(0), y2: y(0) }));
  children.push(s('text', { class: 'tick', x: pad.l - 4, y: y(max) + 10, 'text-anchor': 'end' }, fmtNumber(Math.round(max))));
  children.push(s('text', { class: 'tick', x: pad.l - 4, y: y(0), 'text-anchor': 'end' }, '0'));
  if (points.length > 0) {
    const first = new Date(points[0].t * 1000);
    const last = new Date((points[points.length - 1].t + stepSeconds) * 1000);
    const fmt = (d) => d.toLocaleString('en-GB', { hour: '2-digit', minute: '2-digit', day: stepSeconds >= 3600 ? 'numeric' : undefined, month: stepSeconds >= 3600 ? 'short' : undefined });
    children.push(s('text', { class: 'tick', x: pad.l, y: hgt - 6 }, fmt(first)));
    children.push(s('text', { class: 'tick', x: w - pad.r, y: hgt - 6, 'text-anchor': 'end' }, fmt(last)));
  }
  return s('svg', { class: 'chart', viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'none' }, children);
}

export { rejectedOf };
