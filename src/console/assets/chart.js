// Charts as inline SVG built from DOM nodes: a sparkline for the token table and the usage
// chart of a token's page (accepted items per step, rejected requests on top, and the band
// between the token's baseline and its spike threshold).

import { h, s, fmtNumber } from './dom.js';

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
 * when `band` is given ({low, high} items per step) the shaded band from the baseline to the
 * spike threshold. The SVG stretches to the width; its labels are HTML so they never stretch.
 */
export function usageChart(points, stepSeconds, band, label) {
  const w = 640;
  const hgt = 180;
  const totals = points.map((p) => (p.items || 0) + rejectedOf(p));
  const max = Math.max(1, ...totals, band ? band.high * 1.1 : 0);
  const y = (v) => hgt - (v / max) * (hgt - 4);
  const slot = w / Math.max(1, points.length);
  const barW = Math.max(0.5, slot * 0.8);
  const shapes = [s('title', {}, label)];
  if (band && band.high > 0) {
    shapes.push(s('rect', { class: 'band', x: 0, width: w, y: y(band.high), height: Math.max(1, y(band.low) - y(band.high)) }));
    shapes.push(s('line', { class: 'baseline', x1: 0, x2: w, y1: y(band.low), y2: y(band.low), 'vector-effect': 'non-scaling-stroke' }));
  }
  points.forEach((p, i) => {
    const x = i * slot + (slot - barW) / 2;
    const items = p.items || 0;
    const rejected = rejectedOf(p);
    if (items > 0) {
      shapes.push(s('rect', { class: 'bar-items', x, width: barW, y: y(items), height: hgt - y(items) }));
    }
    if (rejected > 0) {
      shapes.push(s('rect', { class: 'bar-rejected', x, width: barW, y: y(items + rejected), height: y(items) - y(items + rejected) }));
    }
  });
  shapes.push(s('line', { class: 'axis', x1: 0, x2: w, y1: hgt, y2: hgt, 'vector-effect': 'non-scaling-stroke' }));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'none' }, shapes);
  const long = points.length * stepSeconds > 12 * 3600;
  const fmt = (t) => new Date(t * 1000).toLocaleString('en-GB', long
    ? { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' }
    : { hour: '2-digit', minute: '2-digit' });
  const axis = points.length === 0 ? [] : [
    h('span', {}, fmt(points[0].t)),
    h('span', {}, `peak ${fmtNumber(Math.max(0, ...totals))} per ${stepSeconds >= 3600 ? `${stepSeconds / 3600} h` : `${stepSeconds / 60} min`}`),
    h('span', {}, fmt(points[points.length - 1].t + stepSeconds)),
  ];
  return h('figure', { class: 'chart-figure' }, svg, h('figcaption', { class: 'chart-axis' }, axis));
}

export { rejectedOf };
