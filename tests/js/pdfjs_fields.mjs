// Print the fields pdf.js (the engine of Firefox) sees in a PDF, as JSON:
// { name: [{type, value, exportValues, hidden, title}] }, non-terminal parents left out.
import { readFileSync } from "node:fs";
import { getDocument } from "pdfjs-dist/legacy/build/pdf.mjs";

const data = new Uint8Array(readFileSync(process.argv[2]));
const doc = await getDocument({ data, verbosity: 0 }).promise;
const objects = (await doc.getFieldObjects()) || {};
const out = {};
for (const [name, widgets] of Object.entries(objects)) {
  const real = widgets.filter((w) => w.type !== "");
  if (real.length) {
    out[name] = real.map((w) => ({
      type: w.type, value: w.value, exportValues: w.exportValues ?? null,
      hidden: w.hidden ?? false,
    }));
  }
}
const page = await doc.getPage(1);
const annotations = await page.getAnnotations();
const titles = {};
for (const a of annotations) if (a.fieldName) titles[a.fieldName] = a.alternativeText ?? null;
console.log(JSON.stringify({ fields: out, titles, isPureXfa: doc.isPureXfa }));
