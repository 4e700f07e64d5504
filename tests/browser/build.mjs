// Bundles page/main.js and its npm dependencies into one browser script with
// esbuild, entirely from node_modules (the test machines have no CDN access).
//
// `node build.mjs` writes dist/bundle.js; run.mjs imports `bundlePage` and
// builds in memory so the page it serves always matches the sources.

import { build } from 'esbuild';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Returns the bundled page script as a string. */
export async function bundlePage() {
  const result = await build({
    entryPoints: [join(here, 'page', 'main.js')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: ['chrome120'],
    minify: false,
    sourcemap: false,
    logLevel: 'warning',
  });
  return result.outputFiles[0].text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const js = await bundlePage();
  await mkdir(join(here, 'dist'), { recursive: true });
  await writeFile(join(here, 'dist', 'bundle.js'), js);
  process.stderr.write(`wrote dist/bundle.js (${js.length} bytes)\n`);
}
