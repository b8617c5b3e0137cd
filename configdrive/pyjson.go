package configdrive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Nova writes every JSON file of a config drive with Python's json.dumps
// (oslo's jsonutils.dump_as_bytes): members in the order the code inserts
// them, ", " and ": " between items, every character outside printable
// ASCII escaped as \uXXXX, and no HTML escaping. The files here are
// written the same way, so that they are byte for byte Nova's.

// object is a JSON object whose members keep their order, as a Python
// dict does.
type object []member

type member struct {
	key   string
	value any
}

// add appends a member.
func (o *object) add(key string, value any) { *o = append(*o, member{key, value}) }

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := marshal(m.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// pyJSON returns v as Python's json.dumps writes it with its defaults.
func pyJSON(v any) ([]byte, error) {
	b, err := marshal(v)
	if err != nil {
		return nil, err
	}
	return pythonize(b), nil
}

// pythonize turns compact JSON (as encoding/json writes it, without HTML
// escaping) into json.dumps's form: a space after every ',' and ':' that
// separates items, and every rune outside ' '..'~' escaped as \uXXXX
// (as a UTF-16 surrogate pair above U+FFFF). encoding/json already
// escapes control characters as json.dumps does (\b \f \n \r \t, else
// \u00XX), and U+2028 and U+2029.
func pythonize(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	inString := false
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case inString && c == '\\':
			out = append(out, b[i], b[i+1])
			i += 2
			continue
		case c == '"':
			inString = !inString
		case !inString && (c == ',' || c == ':'):
			out = append(out, c, ' ')
			i++
			continue
		case inString && c == 0x7f:
			out = append(out, `\u007f`...)
			i++
			continue
		case inString && c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(b[i:])
			if r >= 0x10000 {
				r -= 0x10000
				out = fmt.Appendf(out, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
			i += n
			continue
		}
		out = append(out, c)
		i++
	}
	return out
}
