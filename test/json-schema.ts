// A JSON Schema validator for the keywords the schemas/ files use (no validator library is installed).
// Unknown keywords fail loudly, so the schema cannot silently use one this does not check.
export type Schema = { [keyword: string]: unknown };
const KNOWN = new Set(["$schema", "title", "description", "$defs", "type", "const", "enum", "required", "properties", "additionalProperties", "items", "pattern", "minimum", "oneOf", "allOf", "if", "then", "$ref"]);

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

export function validate(value: unknown, schema: Schema, path = "$", root: Schema = schema): string[] {
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) throw new Error(`schema keyword ${k} at ${path} is not supported by the test's validator`);
  if (typeof schema.$ref === "string") {
    const target = schema.$ref.replace(/^#\//, "").split("/").reduce<unknown>((node, part) => (node as Schema)[part], root);
    if (!target) throw new Error(`unresolved $ref ${schema.$ref}`);
    return validate(value, target as Schema, path, root);
  }
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const types = ([] as string[]).concat(schema.type as string | string[]);
    const t = typeOf(value);
    if (!types.includes(t) && !(t === "integer" && types.includes("number"))) return [`${path}: expected ${types.join("|")}, got ${t}`];
  }
  if ("const" in schema && JSON.stringify(value) !== JSON.stringify(schema.const)) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (schema.enum && !(schema.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(value))) errors.push(`${path}: ${JSON.stringify(value)} not in enum`);
  if (typeof schema.pattern === "string" && typeof value === "string" && !new RegExp(schema.pattern, "u").test(value)) errors.push(`${path}: does not match ${schema.pattern}`);
  if (typeof schema.minimum === "number" && typeof value === "number" && value < schema.minimum) errors.push(`${path}: below ${schema.minimum}`);
  if (typeOf(value) === "object") {
    const obj = value as Record<string, unknown>;
    for (const r of (schema.required as string[] | undefined) ?? []) if (!(r in obj)) errors.push(`${path}: missing ${r}`);
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) errors.push(...validate(v, props[k], `${path}.${k}`, root));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property ${k}`);
      else if (typeof schema.additionalProperties === "object") errors.push(...validate(v, schema.additionalProperties as Schema, `${path}.${k}`, root));
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((item, i) => errors.push(...validate(item, schema.items as Schema, `${path}[${i}]`, root)));
  if (schema.oneOf) {
    const passing = (schema.oneOf as Schema[]).filter((s) => validate(value, s, path, root).length === 0).length;
    if (passing !== 1) errors.push(`${path}: matches ${passing} of oneOf's schemas, expected 1`);
  }
  for (const s of (schema.allOf as Schema[] | undefined) ?? []) errors.push(...validate(value, s, path, root));
  if (schema.if && validate(value, schema.if as Schema, path, root).length === 0 && schema.then) errors.push(...validate(value, schema.then as Schema, path, root));
  return errors;
}

