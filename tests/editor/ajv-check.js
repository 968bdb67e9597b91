// Compiles the config schema with Ajv in strict mode (standard formats only; the editor
// annotations `markdownDescription`, `markdownEnumDescriptions` and `defaultSnippets` declared
// as vocabulary), then validates each example config given, and every `default` and
// `defaultSnippets` body against the subschema that declares it. Exits 1 with the failures. Run by tests/tests/editor.rs:
//   node ajv-check.js SCHEMA.json EXAMPLE.yml...
'use strict';
const fs = require('fs');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');
const YAML = require('yaml');

const [schemaPath, ...examples] = process.argv.slice(2);
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
addFormats(ajv);
ajv.addVocabulary(['markdownDescription', 'markdownEnumDescriptions', 'defaultSnippets']);
const validate = ajv.compile(schema);

const failures = [];
for (const file of examples) {
  const config = YAML.parse(fs.readFileSync(file, 'utf8'));
  if (!validate(config)) {
    failures.push(`${file}: ${ajv.errorsText(validate.errors)}`);
  }
}
console.log(`${examples.length - failures.length} of ${examples.length} examples valid`);

// Keywords whose values are subschemas (maps of them, lists of them, or one).
const MAPS = ['properties', 'patternProperties', 'definitions'];
const LISTS = ['allOf', 'anyOf', 'oneOf'];
const SINGLE = ['additionalProperties', 'items', 'propertyNames', 'if', 'then', 'else', 'not'];
const escape = (key) => key.replace(/~/g, '~0').replace(/\//g, '~1');
// A snippet's `${1:text}` placeholders stand for `text`.
const unsnippet = (body) => JSON.parse(JSON.stringify(body).replace(/\$\{\d+:([^}]*)\}/g, '$1'));

let checked = 0;
function visit(node, pointer) {
  if (!node || typeof node !== 'object') return;
  const values = [];
  if ('default' in node) values.push(['default', node.default]);
  for (const snippet of node.defaultSnippets || []) {
    values.push([`snippet "${snippet.label}"`, unsnippet(snippet.body)]);
  }
  if (values.length > 0) {
    const sub = ajv.compile({ $ref: `${schema.$id}#${pointer}` });
    for (const [what, value] of values) {
      checked += 1;
      if (!sub(value)) {
        failures.push(`${pointer} ${what}: ${ajv.errorsText(sub.errors)}`);
      }
    }
  }
  for (const key of MAPS) {
    for (const [name, sub] of Object.entries(node[key] || {})) {
      visit(sub, `${pointer}/${key}/${escape(name)}`);
    }
  }
  for (const key of LISTS) {
    (node[key] || []).forEach((sub, i) => visit(sub, `${pointer}/${key}/${i}`));
  }
  for (const key of SINGLE) {
    visit(node[key], `${pointer}/${key}`);
  }
}
visit(schema, '');
console.log(`${checked} defaults and snippets checked`);
if (failures.length > 0) {
  console.log(failures.join('\n'));
  process.exit(1);
}
