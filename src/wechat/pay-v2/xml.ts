import { XMLBuilder, XMLParser } from 'fast-xml-parser';

/** WeChat Pay APIv2 messages are one flat element (`<xml>`, `<root>` inside req_info) of string fields. */
export type V2Fields = Record<string, string>;

/** XML WeChat's APIv2 would refuse, or that is not a flat APIv2 message. */
export class V2XmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'V2XmlError';
  }
}

/**
 * A document type declaration is where XXE and billion-laughs live; WeChat never sends one, so
 * its mere presence refuses the message before any parser sees it. Without a DTD no entity but the
 * five predefined ones can exist, and those are all the parser decodes.
 */
const DTD = /<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST)/i;
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const parser = new XMLParser({
  processEntities: true,
  htmlEntities: false,
  ignoreAttributes: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  parseTagValue: false,
  trimValues: false,
});

const builder = new XMLBuilder({ cdataPropName: '__cdata', suppressEmptyNode: false });

/**
 * Parses one APIv2 message into its fields. The root element must be `root` (default `xml`); every
 * child must be a plain text or CDATA field (no nesting, no repeats). Values are kept as strings,
 * surrounding whitespace outside CDATA trimmed as WeChat's pretty-printed samples need.
 */
export function parseV2Xml(raw: string | Buffer, root = 'xml'): V2Fields {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  if (!text.trim()) throw new V2XmlError('empty body');
  if (DTD.test(text)) throw new V2XmlError('a document type declaration is not allowed');
  // WeChat's own shape is read by hand; anything else (comments, attributes, entities, …) by the parser.
  return parseFlatV2Xml(text, root) ?? parseV2XmlGeneral(text, root);
}

/**
 * parseV2Xml's general case: fast-xml-parser (no DTD can reach it), then the flat-message checks.
 * Exported for the unit test that holds the hand-written fast path to the same answers.
 */
export function parseV2XmlGeneral(text: string, root = 'xml'): V2Fields {
  let doc: unknown;
  try {
    doc = parser.parse(text, true);
  } catch (error) {
    throw new V2XmlError(`malformed XML: ${(error as Error).message}`);
  }
  const top = doc as Record<string, unknown>;
  const names = Object.keys(top);
  if (names.length !== 1 || names[0] !== root) throw new V2XmlError(`expected one <${root}> element`);
  const body = top[root];
  if (body === '' || body === undefined) return {};
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new V2XmlError(`<${root}> has no fields`);
  const out: V2Fields = {};
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    if (name === '#text') {
      // Indentation between fields is fine; text beside them is not a v2 message.
      if (typeof value === 'string' && !value.trim()) continue;
      throw new V2XmlError(`<${root}> holds text besides its fields`);
    }
    if (typeof value !== 'string') throw new V2XmlError(`field <${name}> is not a single text value`);
    out[name] = value.trim();
  }
  return out;
}

/** The XML declarations WeChat and our sandbox write; any other processing instruction goes to the general parser. */
const DECLARATION = /<\?xml version=(["'])1\.0\1(?: encoding=(["'])[A-Za-z][A-Za-z0-9._-]*\2)?(?: standalone=(["'])(?:yes|no)\3)? ?\?>/y;
const CDATA_OPEN = '<![CDATA[';
const CDATA_CLOSE = ']]>';
/** Names the general parser refuses or renames (prototype pollution guards): always left to it. */
const RESERVED = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);

function isNameChar(c: number, first: boolean): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || (!first && c >= 48 && c <= 57);
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}

/**
 * The fast path of parseV2Xml, for exactly the shape WeChat sends: an optional plain
 * `<?xml version="1.0" encoding="UTF-8"?>` declaration, `<root>`, then only fields `<name>value</name>` (name `[A-Za-z_][A-Za-z0-9_]*`,
 * value one or more consecutive CDATA sections, or text without `<`, `>`, `&` or CR), whitespace
 * between them, `</root>`, nothing after. Returns undefined for anything else — a comment, an
 * attribute, an entity or character reference, a self-closed, nested or repeated field, a reserved
 * name, a mismatched tag, no field at all — which then goes to the general parser, so this accepts nothing that one
 * would refuse and gives the same fields (values trimmed like it). It never expands anything and
 * scans the text once (indexOf only), so a large or hostile body costs linear time.
 * Exported for its unit test, which checks it against the general parser.
 */
export function parseFlatV2Xml(text: string, root = 'xml'): V2Fields | undefined {
  const n = text.length;
  let i = 0;
  if (text.startsWith('<?')) {
    // only at the very start (not after a BOM or whitespace)
    DECLARATION.lastIndex = 0;
    if (!DECLARATION.test(text)) return undefined;
    i = DECLARATION.lastIndex;
  } else if (text.charCodeAt(0) === 0xfeff) {
    i = 1;
  }
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  const open = `<${root}>`;
  if (!text.startsWith(open, i)) return undefined;
  i += open.length;
  const out: V2Fields = {};
  for (;;) {
    while (i < n && isSpace(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== 60 /* < */) return undefined;
    if (text.charCodeAt(i + 1) === 47 /* / */) break;
    // <name>
    let j = i + 1;
    if (!isNameChar(text.charCodeAt(j), true)) return undefined;
    while (j < n && isNameChar(text.charCodeAt(j), false)) j++;
    if (text.charCodeAt(j) !== 62 /* > */) return undefined;
    const name = text.slice(i + 1, j);
    if (RESERVED.has(name) || Object.prototype.hasOwnProperty.call(out, name)) return undefined;
    i = j + 1;
    let value: string;
    if (text.startsWith(CDATA_OPEN, i)) {
      value = '';
      while (text.startsWith(CDATA_OPEN, i)) {
        const end = text.indexOf(CDATA_CLOSE, i + CDATA_OPEN.length);
        if (end < 0) return undefined;
        const part = text.slice(i + CDATA_OPEN.length, end);
        if (part.includes('\r')) return undefined;
        value += part;
        i = end + CDATA_CLOSE.length;
      }
    } else {
      const end = text.indexOf('<', i);
      if (end < 0) return undefined;
      value = text.slice(i, end);
      if (value.includes('&') || value.includes('>') || value.includes('\r')) return undefined;
      i = end;
    }
    // </name>
    if (text.charCodeAt(i) !== 60 || text.charCodeAt(i + 1) !== 47 || !text.startsWith(name, i + 2) || text.charCodeAt(i + 2 + name.length) !== 62) return undefined;
    i += name.length + 3;
    out[name] = value.trim();
  }
  const close = `</${root}>`;
  // No field at all (an empty or blank root) is for the general parser to judge.
  if (!text.startsWith(close, i) || Object.keys(out).length === 0) return undefined;
  i += close.length;
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  return i === n ? out : undefined;
}

/** Builds `<xml>` with every value in CDATA (numbers too, which WeChat accepts), in the given order. */
export function buildV2Xml(fields: Record<string, string | number | undefined>, root = 'xml'): string {
  const body: Record<string, { __cdata: string }> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (!FIELD_NAME.test(name)) throw new V2XmlError(`invalid field name ${JSON.stringify(name)}`);
    body[name] = { __cdata: String(value) };
  }
  return builder.build({ [root]: body }) as string;
}
