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
