import { buildV2Xml, parseV2Xml } from './xml';

describe('APIv2 XML', () => {
  it('reads CDATA and plain fields as strings (numbers not converted, whitespace trimmed)', () => {
    const xml = '<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  <total_fee>0100</total_fee>\n  <body><![CDATA[a & <b>]]></body>\n  <empty></empty>\n</xml>';
    expect(parseV2Xml(xml)).toEqual({ return_code: 'SUCCESS', total_fee: '0100', body: 'a & <b>', empty: '' });
  });

  it('decodes only the predefined entities', () => {
    expect(parseV2Xml('<xml><a>1 &amp; 2 &lt;3&gt;</a></xml>')).toEqual({ a: '1 & 2 <3>' });
  });

  it('writes every value as CDATA and survives a value containing ]]>', () => {
    const xml = buildV2Xml({ body: 'x]]><y>', total_fee: 1, skipped: undefined });
    expect(xml).toBe('<xml><body><![CDATA[x]]]]><![CDATA[><y>]]></body><total_fee><![CDATA[1]]></total_fee></xml>');
    expect(parseV2Xml(xml)).toEqual({ body: 'x]]><y>', total_fee: '1' });
  });

  it('refuses an XXE payload (DOCTYPE with a SYSTEM entity) without reading the file', () => {
    const xxe = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><a>&xxe;</a></xml>';
    expect(() => parseV2Xml(xxe)).toThrow(/document type declaration/);
  });

  it('refuses a billion-laughs payload at once', () => {
    const laughs =
      '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
      '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><a>&lol3;</a></xml>';
    const started = Date.now();
    expect(() => parseV2Xml(laughs)).toThrow(/document type declaration/);
    expect(Date.now() - started).toBeLessThan(100);
  });

  it('refuses malformed XML, another root, nested or repeated fields and an empty body', () => {
    expect(() => parseV2Xml('<xml><a>1</xml>')).toThrow(/malformed/);
    expect(() => parseV2Xml('<html><a>1</a></html>')).toThrow(/<xml>/);
    expect(() => parseV2Xml('<xml><a><b>1</b></a></xml>')).toThrow(/<a>/);
    expect(() => parseV2Xml('<xml><a>1</a><a>2</a></xml>')).toThrow(/<a>/);
    expect(() => parseV2Xml('  ')).toThrow(/empty/);
  });

  it('refuses a field name that would break the XML it builds', () => {
    expect(() => buildV2Xml({ 'a><b': 'x' })).toThrow(/invalid field name/);
  });
});
