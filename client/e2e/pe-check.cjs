// Checks that Windows executables are valid PE files carrying the product's name, version and
// icon: node e2e/pe-check.cjs <product> <version> <icon.ico> <file.exe>...  (exit 1 on a mismatch)
// resedit and pe-library are electron-builder's own (it edits the resources with them).
const fs = require('node:fs');
const PE = require('pe-library');
const ResEdit = require('resedit');

const [product, version, iconFile, ...files] = process.argv.slice(2);
const expectedIcons = ResEdit.Data.IconFile.from(fs.readFileSync(iconFile)).icons.length;
let failed = false;
for (const file of files) {
  const problems = [];
  let exe;
  try {
    exe = PE.NtExecutable.from(fs.readFileSync(file), { ignoreCert: true });
  } catch (error) {
    console.error(`${file}: not a valid PE file (${error.message})`);
    failed = true;
    continue;
  }
  const entries = PE.NtExecutableResource.from(exe).entries;
  const [info] = ResEdit.Resource.VersionInfo.fromEntries(entries);
  const strings = info ? Object.assign({}, ...info.getAllLanguagesForStringValues().map((lang) => info.getStringValues(lang))) : {};
  if (strings.ProductName !== product) problems.push(`ProductName ${JSON.stringify(strings.ProductName)}`);
  if (!String(strings.ProductVersion || '').startsWith(version)) problems.push(`ProductVersion ${JSON.stringify(strings.ProductVersion)}`);
  if (!String(strings.FileVersion || '').startsWith(version)) problems.push(`FileVersion ${JSON.stringify(strings.FileVersion)}`);
  const groups = ResEdit.Resource.IconGroupEntry.fromEntries(entries);
  if (!groups.some((group) => group.icons.length === expectedIcons)) {
    problems.push(`no icon group with the ${expectedIcons} images of ${iconFile} (found ${groups.map((g) => g.icons.length)})`);
  }
  if (problems.length) {
    failed = true;
    console.error(`${file}: ${problems.join('; ')}`);
  } else {
    console.log(`${file}: PE ${exe.is32bit() ? 'x86' : 'x64'}, ${strings.ProductName} ${strings.ProductVersion}, icon of ${expectedIcons} images`);
  }
}
process.exit(failed ? 1 : 0);
