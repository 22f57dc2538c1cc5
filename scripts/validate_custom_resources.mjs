// Validates custom resources against their operators' own schemas, as the npm packages of
// kubernetes-models carry them (installed by scripts/setup under .tools/npm).
// Reads a JSON list of objects on stdin; prints a JSON list with, for each, null (valid) or the
// validation error; exits 1 when an object's kind has no schema here.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const PACKAGES = { "monitoring.coreos.com": "prometheus-operator", "cert-manager.io": "cert-manager" };
const modules = process.argv[2];
const objects = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const object of objects) {
  const [group, version] = object.apiVersion.split("/");
  const name = PACKAGES[group];
  if (!name) {
    console.error(`no schema package for ${object.apiVersion}`);
    process.exit(1);
  }
  const path = `${modules}/@kubernetes-models/${name}/${group}/${version}/${object.kind}.js`;
  const module = await import(pathToFileURL(path).href);
  try {
    new module[object.kind](object).validate();
    results.push(null);
  } catch (error) {
    results.push(String(error.message || error));
  }
}
console.log(JSON.stringify(results));
