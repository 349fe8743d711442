/**
 * A tiny template filler for the config files in templates/: `{{name}}` is
 * replaced by its value; a placeholder without a value is a bug and throws,
 * so a template and its renderer cannot drift apart silently. Pure.
 */
export function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Za-z][A-Za-z0-9]*)\}\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`template placeholder {{${name}}} has no value`);
    return v;
  });
}

/** Indent every non-empty line by `prefix`. */
export function indent(text: string, prefix: string): string {
  return text
    .split("\n")
    .map((l) => (l === "" ? l : prefix + l))
    .join("\n");
}
