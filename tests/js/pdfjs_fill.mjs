// Fill a PDF form the way Firefox does (pdf.js annotationStorage + saveDocument, an
// incremental update): node pdfjs_fill.mjs IN OUT VALUES.json
// Text fields take strings, checkboxes true/false, radio groups and dropdowns the export value.
import { readFileSync, writeFileSync } from "node:fs";
import { getDocument } from "pdfjs-dist/legacy/build/pdf.mjs";

const [input, output, valuesFile] = process.argv.slice(2);
const values = JSON.parse(readFileSync(valuesFile, "utf8"));
const doc = await getDocument({ data: new Uint8Array(readFileSync(input)), verbosity: 0 }).promise;
const objects = await doc.getFieldObjects();
for (const [name, value] of Object.entries(values)) {
  const widgets = (objects[name] || []).filter((w) => w.type !== "");
  if (!widgets.length) throw new Error(`no field ${name}`);
  for (const w of widgets) {
    if (w.type === "radiobutton") doc.annotationStorage.setValue(w.id, { value: w.exportValues === value });
    else doc.annotationStorage.setValue(w.id, { value });
  }
}
writeFileSync(output, await doc.saveDocument());
