// The .deb of the desktop app, from electron-builder's unpacked Linux dir, with npm
// electron-installer-debian (dpkg-deb and fakeroot; electron-builder's own deb target needs fpm,
// which it downloads). Metadata: build/debian.json and package.json (name, version).
//
//   node build/deb.cjs <linux-unpacked dir> <output dir> [electron version]
//
// electron-installer-debian reads the Electron version (for the package's Depends) from a `version`
// file in the app dir, which electron-packager writes and electron-builder does not: the dir is
// staged (hard links) with that file. The version defaults to the installed `electron` package's.
// It also wants a LICENSE there (it becomes /usr/share/doc/<name>/copyright): the app's licence
// (package.json) followed by Electron's (LICENSE.electron.txt; Chromium's stay in LICENSES.chromium.html).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const debian = require('electron-installer-debian');

async function main() {
  const [src, dest, electronVersion = require('electron/package.json').version] = process.argv.slice(2);
  if (!src || !dest) {
    console.error('usage: node build/deb.cjs <linux-unpacked dir> <output dir> [electron version]');
    process.exit(2);
  }
  const client = path.dirname(__dirname);
  const pkg = require(path.join(client, 'package.json'));
  const config = JSON.parse(fs.readFileSync(path.join(__dirname, 'debian.json'), 'utf8'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'messenger-deb-'));
  try {
    const stage = path.join(work, 'app');
    const copy = spawnSync('cp', ['-al', path.resolve(src), stage], { stdio: 'inherit' });
    if (copy.status !== 0) throw new Error(`cp -al ${src} failed`);
    fs.writeFileSync(path.join(stage, 'version'), `${electronVersion}\n`);
    const electronLicense = fs.readFileSync(path.join(stage, 'LICENSE.electron.txt'), 'utf8');
    fs.writeFileSync(
      path.join(stage, 'LICENSE'),
      `${config.productName} desktop app (${pkg.name} ${pkg.version}): ${pkg.license} licence, ${pkg.author}.\n\n` +
        `It runs on Electron ${electronVersion}, under this licence (Chromium's: LICENSES.chromium.html in the app dir):\n\n` +
        electronLicense,
    );
    const options = await debian({
      ...config,
      version: pkg.version,
      icon: path.join(client, config.icon),
      src: stage,
      dest: path.resolve(dest),
      arch: 'amd64',
      logger: () => {},
    });
    for (const file of options.packagePaths) console.log(file);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
