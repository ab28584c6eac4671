// A foreign form made by pdf-lib, filled at once: node pdflib_make_form.mjs OUT
// Radio export values with spaces and umlauts-free odd names, a checked and an unchecked box.
import { writeFileSync } from "node:fs";
import { PDFDocument } from "pdf-lib";

const doc = await PDFDocument.create();
const page = doc.addPage([595, 842]);
const form = doc.getForm();
const name = form.createTextField("Antragsteller");
name.addToPage(page, { x: 50, y: 760, width: 300, height: 20 });
name.setText("Anna Weiß");
const note = form.createTextField("Bemerkung");
note.enableMultiline();
note.addToPage(page, { x: 50, y: 640, width: 300, height: 80 });
note.setText("erste Zeile\nzweite Zeile");
const agree = form.createCheckBox("Zustimmung");
agree.addToPage(page, { x: 50, y: 600, width: 14, height: 14 });
agree.check();
const news = form.createCheckBox("Newsletter");
news.addToPage(page, { x: 50, y: 570, width: 14, height: 14 });
const size = form.createRadioGroup("Groesse");
size.addOptionToPage("Option A", page, { x: 50, y: 530, width: 14, height: 14 });
size.addOptionToPage("Choice2", page, { x: 90, y: 530, width: 14, height: 14 });
size.select("Choice2");
const land = form.createDropdown("Land");
land.addOptions(["Thüringen", "Sachsen"]);
land.addToPage(page, { x: 50, y: 490, width: 150, height: 20 });
land.select("Sachsen");
writeFileSync(process.argv[2], await doc.save());
