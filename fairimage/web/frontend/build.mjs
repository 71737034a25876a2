// Bundles the viewers into ../static/build with esbuild: no CDN, everything served by fairimage itself.
import { build } from 'esbuild';
import { cpSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'static', 'build');
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { viewer: join(here, 'src', 'viewer.js'), deepzoom: join(here, 'src', 'deepzoom.js') },
  outdir: out,
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: true,
  target: ['chrome110', 'firefox115', 'safari16'],
  legalComments: 'linked',
  logLevel: 'warning',
});
// OpenSeadragon's navigation button images, referenced by prefixUrl.
cpSync(join(here, 'node_modules', 'openseadragon', 'build', 'openseadragon', 'images'), join(out, 'osd-images'), {
  recursive: true,
});
console.log(`viewer bundles written to ${out}`);
