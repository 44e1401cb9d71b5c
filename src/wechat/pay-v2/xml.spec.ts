import { buildV2Xml, parseFlatV2Xml, parseV2Xml, parseV2XmlGeneral } from './xml';

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

  describe('the hand-written fast path for the flat shape WeChat sends', () => {
    const notification =
      '<xml><appid><![CDATA[wx2421b1c4370ec43b]]></appid><mch_id><![CDATA[10000100]]></mch_id><total_fee>1</total_fee>' +
      '<sign><![CDATA[ABC]]></sign><attach><![CDATA[a <b> & c]]></attach><empty></empty></xml>';

    it('reads a notification, an answer and req_info the way the general parser does', () => {
      const samples: Array<[string, string]> = [
        [notification, 'xml'],
        ['<?xml version="1.0" encoding="UTF-8"?>\n<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  <n> 12 </n>\n</xml>\n', 'xml'],
        ['<root><out_refund_no><![CDATA[R1]]></out_refund_no><refund_fee><![CDATA[100]]></refund_fee></root>', 'root'],
        [buildV2Xml({ body: 'x]]><y>', total_fee: 1 }), 'xml'],
        ['\ufeff<xml><a>中文</a></xml>', 'xml'],
      ];
      for (const [xml, root] of samples) {
        const fast = parseFlatV2Xml(xml, root);
        expect({ xml, fast }).toEqual({ xml, fast: parseV2XmlGeneral(xml, root) });
      }
      expect(parseV2Xml(notification)).toEqual({ appid: 'wx2421b1c4370ec43b', mch_id: '10000100', total_fee: '1', sign: 'ABC', attach: 'a <b> & c', empty: '' });
    });

    it('leaves everything outside that shape to the general parser (which decides as before)', () => {
      const outside = [
        '<xml><a>1 &amp; 2</a></xml>', // an entity
        '<xml><a>&#65;</a></xml>', // a character reference
        '<xml a="1"><b>1</b></xml>', // an attribute
        '<xml><a b="1">1</a></xml>',
        '<xml><a>1</a><!-- comment --></xml>',
        '<xml><a/></xml>', // self-closed
        '<xml><a><b>1</b></a></xml>', // nested
        '<xml><a>1</a><a>2</a></xml>', // repeated
        '<xml><a> <![CDATA[x]]> </a></xml>', // text beside CDATA
        '<xml><a>x>y</a></xml>',
        '<xml><a>1\r\n2</a></xml>', // line ends the general parser normalises
        '<xml><toString>1</toString></xml>', // names the general parser renames or refuses
        '<xml><__proto__>1</__proto__></xml>',
        '<xml><constructor>1</constructor></xml>',
        '<xml><a>1</b></xml>', // mismatched
        '<xml><a>1</a>', // unclosed root
        '<xml><a><![CDATA[1</a></xml>', // unclosed CDATA
        '<xml><a>1</a></xml><xml></xml>', // a second root
        '<xml><a>1</a></xml>junk',
        '<xml>text<a>1</a></xml>',
        '<html><a>1</a></html>',
        '<xml><名>1</名></xml>',
        '<xml ><a>1</a></xml>',
        '<xml><a>1</a ></xml>',
        '<?xml version="1.0"<x?><xml></xml>',
        '<?xml version=1.0?><xml></xml>',
        '<?xml version="1.0" foo="bar"?><xml></xml>',
        '<?pi x?><xml></xml>',
        ' <?xml version="1.0"?><xml><a>1</a></xml>', // a declaration not at the very start
        '\ufeff<?xml version="1.0"?><xml><a>1</a></xml>',
        '<xml></xml>', // no field: the general parser judges (an empty root is {}, a blank one refused)
        '<xml> </xml>',
      ];
      for (const xml of outside) expect({ xml, fast: parseFlatV2Xml(xml) }).toEqual({ xml, fast: undefined });
    });

    it('never accepts what the general parser refuses, and always agrees with it (randomised)', () => {
      // Documents of WeChat's tokens and hostile ones, shuffled: wherever the fast path answers, it
      // answers what the general parser does.
      const tokens = [
        '<xml>', '</xml>', '<a>', '</a>', '<b>', '</b>', '<a>', '</a>', '<![CDATA[', ']]>', 'x', '1', ' ', '\n', '\t', '&amp;', '&', '>', '<',
        '\r', '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>', '<?xml version=\'1.0\' standalone="yes"?>', '<?pi x?>', '"', '<!-- c -->', '<toString>', '</toString>', '<a/>', 'é', '\ufeff', '<c d="1">', '</c>', ']]', '<!', '</',
      ];
      let seed = 20261204;
      const random = (n: number) => {
        // mulberry32
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) % n;
      };
      let agreed = 0;
      for (let k = 0; k < 20_000; k++) {
        let xml: string;
        if (k % 2) {
          // a well-formed message, then mutated at one place
          const fields = Array.from({ length: 1 + random(4) }, (_, i) => {
            const name = ['a', 'b', 'sign', 'total_fee', 'toString'][random(5)] + (random(3) ? i : '');
            const values = ['1', ' x ', '', 'a<b>&c', ']]', 'é', '&amp;', '&#65;', '&lt;', 'x>y', '1\r\n2', '\u00a0y\t'];
            const value = values[random(values.length)];
            return random(2) && !value.includes('<') ? `<${name}>${value}</${name}>` : `<${name}><![CDATA[${value}]]></${name}>`;
          });
          xml = `${['', '', '<?xml version="1.0"?>\n', '<?xml version="1.0" encoding="UTF-8" ?>'][random(4)]}<xml>${fields.join(random(2) ? '' : '\n  ')}</xml>`;
          const at = random(xml.length + 1);
          xml = random(3) ? xml : xml.slice(0, at) + tokens[random(tokens.length)] + xml.slice(at + random(3));
        } else {
          xml = Array.from({ length: 2 + random(10) }, () => tokens[random(tokens.length)]).join('');
        }
        const fast = parseFlatV2Xml(xml);
        if (fast === undefined) continue;
        agreed++;
        let general: unknown;
        try {
          general = parseV2XmlGeneral(xml);
        } catch (error) {
          general = `refused: ${(error as Error).message}`;
        }
        expect({ xml, fast }).toEqual({ xml, fast: general });
      }
      expect(agreed).toBeGreaterThan(2000);
    });

    it('refuses XXE and billion laughs before either parser runs, and a 1 MB body in linear time', () => {
      const xxe = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><a>&xxe;</a></xml>';
      expect(() => parseV2Xml(xxe)).toThrow(/document type declaration/);
      expect(() => parseV2Xml('<xml><!ENTITY x "y"><a>1</a></xml>')).toThrow(/document type declaration/);
      const started = Date.now();
      // 1 MB of fields, of one huge value, and of an unterminated CDATA section
      const many = `<xml>${Array.from({ length: 40_000 }, (_, i) => `<f${i}>v</f${i}>`).join('')}</xml>`;
      expect(Object.keys(parseV2Xml(many))).toHaveLength(40_000);
      expect(parseV2Xml(`<xml><a><![CDATA[${'x'.repeat(1024 * 1024)}]]></a></xml>`).a).toHaveLength(1024 * 1024);
      expect(parseFlatV2Xml(`<xml><a><![CDATA[${'x'.repeat(1024 * 1024)}</a></xml>`)).toBeUndefined();
      expect(() => parseV2Xml(`<xml><a><![CDATA[${'x'.repeat(1024 * 1024)}</a></xml>`)).toThrow(/malformed/);
      expect(parseFlatV2Xml(`<xml>${'<a>'.repeat(100_000)}`)).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(5000);
    });
  });
});
