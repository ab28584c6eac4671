// Fill a PDF form with pdf-lib by field name: node pdflib_fill.mjs IN OUT VALUES.json
// Text fields take strings, checkboxes true/false, radio groups and dropdowns the export value.
import { readFileSync, writeFileSync } from "node:fs";
import { PDFDocument, PDFTextField, PDFCheckBox, PDFRadioGroup, PDFDropdown } from "pdf-lib";

const [input, output, valuesFile] = process.argv.slice(2);
const doc = await PDFDocument.load(readFileSync(input));
const form = doc.getForm();
const values = JSON.parse(readFileSync(valuesFile, "utf8"));
for (const [name, value] of Object.entries(values)) {
  const field = form.getField(name);
  if (field instanceof PDFTextField) field.setText(value);
  else if (field instanceof PDFCheckBox) value ? field.check() : field.uncheck();
  else if (field instanceof PDFRadioGroup) field.select(value);
  else if (field instanceof PDFDropdown) field.select(value);
  else throw new Error(`unsupported field ${name}`);
}
writeFileSync(output, await doc.save());
