// Bundles the viewers into ../static/build with esbuild: no CDN, everything served by fairimage itself.
import { build } from 'esbuild';
import MiniCssExtractPlugin from 'mini-css-extract-plugin';
import { cpSync, mkdirSync } from 'node:fs';
import webpack from 'webpack';
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

// Neuroglancer: esbuild cannot bundle its workers (evanw/esbuild#795), webpack can. Its CSS goes to a file
// (the page's Content-Security-Policy has no inline styles). Three ikonate icons it takes from a GitHub
// commit are not in ikonate's npm release: src/icons/ has stand-ins.
const icons = ['code-alt', 'controls-alt', 'layers'];
const stats = await new Promise((done, fail) =>
  webpack(
    {
      mode: 'production',
      context: here,
      entry: { neuroglancer: join(here, 'src', 'neuroglancer.js') },
      output: { path: join(out, 'neuroglancer'), filename: '[name].js', publicPath: 'auto', clean: true },
      performance: { hints: false },
      devtool: false,
      resolve: {
        alias: Object.fromEntries(icons.map((name) => [`ikonate/icons/${name}.svg`, join(here, 'src', 'icons', `${name}.svg`)])),
      },
      module: {
        rules: [
          { resourceQuery: /raw/, type: 'asset/source' },
          { test: /\.html$/, type: 'asset/resource', generator: { filename: '[name][ext]' } },
          { test: /\.css$/, use: [MiniCssExtractPlugin.loader, 'css-loader'] },
        ],
      },
      plugins: [new MiniCssExtractPlugin({ filename: '[name].css' })],
    },
    (error, result) => (error ? fail(error) : done(result)),
  ),
);
if (stats.hasErrors()) {
  console.error(stats.toString({ all: false, errors: true }));
  process.exit(1);
}
console.log(`viewer bundles written to ${out}`);
