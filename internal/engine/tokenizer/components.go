package tokenizer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/tailor-ml/tailor/internal/errs"
)

// normalizer rewrites a piece of text before pre-tokenization.
type normalizer func(string) string

// decodeStep rewrites the token strings while decoding, as a Hugging Face
// decoder's decode_chain does.
type decodeStep func(toks []string) []string

func unsupported(field, kind, typ string) error {
	return errs.Invalid("tokenizer.json: %s: %s type %q is not supported", field, kind, typ)
}

// buildNormalizers turns a normalizer component into a list of steps.
func buildNormalizers(c *component, field string) ([]normalizer, error) {
	if c == nil {
		return nil, nil
	}
	switch c.Type {
	case "Sequence":
		var out []normalizer
		for i, raw := range c.Normalizers {
			f := fmt.Sprintf("%s.normalizers[%d]", field, i)
			sub, err := parseComponent(raw, f)
			if err != nil {
				return nil, err
			}
			steps, err := buildNormalizers(sub, f)
			if err != nil {
				return nil, err
			}
			out = append(out, steps...)
		}
		return out, nil
	case "Prepend":
		p := c.Prepend
		return []normalizer{func(s string) string {
			if s == "" {
				return s
			}
			return p + s
		}}, nil
	case "Replace":
		f, err := replacer(c, field)
		if err != nil {
			return nil, err
		}
		return []normalizer{f}, nil
	case "NFC":
		return []normalizer{norm.NFC.String}, nil
	case "NFD":
		return []normalizer{norm.NFD.String}, nil
	case "NFKC":
		return []normalizer{norm.NFKC.String}, nil
	case "NFKD":
		return []normalizer{norm.NFKD.String}, nil
	case "Lowercase":
		return []normalizer{strings.ToLower}, nil
	case "Strip":
		left, right := c.StripLeft == nil || *c.StripLeft, c.StripRight == nil || *c.StripRight
		return []normalizer{func(s string) string {
			if left {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if right {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
			return s
		}}, nil
	}
	return nil, unsupported(field, "normalizer", c.Type)
}

// replacer builds a Replace step from a {String} or Go-compatible {Regex}
// pattern.
func replacer(c *component, field string) (func(string) string, error) {
	if c.Pattern == nil {
		return nil, errs.Invalid("tokenizer.json: %s.pattern: missing", field)
	}
	content := c.Content
	if c.Pattern.String != nil {
		old := *c.Pattern.String
		if old == "" {
			return nil, errs.Invalid("tokenizer.json: %s.pattern.String: empty", field)
		}
		return func(s string) string { return strings.ReplaceAll(s, old, content) }, nil
	}
	if c.Pattern.Regex != nil {
		re, err := regexp.Compile(*c.Pattern.Regex)
		if err != nil {
			return nil, errs.Invalid("tokenizer.json: %s.pattern.Regex: %q is not supported: %v", field, *c.Pattern.Regex, err)
		}
		return func(s string) string { return re.ReplaceAllLiteralString(s, content) }, nil
	}
	return nil, errs.Invalid("tokenizer.json: %s.pattern: want String or Regex", field)
}

// buildPreTokenizer turns a pre_tokenizer component into steps and reports
// whether it includes the ByteLevel step.
func buildPreTokenizer(c *component, field string) ([]preStep, bool, error) {
	if c == nil {
		return nil, false, nil
	}
	switch c.Type {
	case "Sequence":
		var out []preStep
		byteLevel := false
		for i, raw := range c.Pretokenizers {
			f := fmt.Sprintf("%s.pretokenizers[%d]", field, i)
			sub, err := parseComponent(raw, f)
			if err != nil {
				return nil, false, err
			}
			steps, bl, err := buildPreTokenizer(sub, f)
			if err != nil {
				return nil, false, err
			}
			out = append(out, steps...)
			byteLevel = byteLevel || bl
		}
		return out, byteLevel, nil
	case "ByteLevel":
		addPrefix := c.AddPrefixSpace == nil || *c.AddPrefixSpace
		useRegex := c.UseRegex == nil || *c.UseRegex
		return []preStep{byteLevelStep(addPrefix, useRegex)}, true, nil
	case "Split":
		s, err := splitStep(c, field)
		if err != nil {
			return nil, false, err
		}
		return []preStep{s}, false, nil
	case "Digits":
		return []preStep{digitsStep(c.IndividualDigits)}, false, nil
	case "Metaspace":
		repl, scheme, split := metaspaceOptions(c)
		return []preStep{metaspaceStep(repl, scheme, split)}, false, nil
	}
	return nil, false, unsupported(field, "pre-tokenizer", c.Type)
}

func splitStep(c *component, field string) (preStep, error) {
	if c.Invert {
		return nil, errs.Invalid("tokenizer.json: %s.invert: true is not supported", field)
	}
	removed := false
	switch c.Behavior {
	case "Isolated", "":
	case "Removed":
		removed = true
	default:
		return nil, errs.Invalid("tokenizer.json: %s.behavior: %q is not supported (want Isolated or Removed)", field, c.Behavior)
	}
	if c.Pattern == nil {
		return nil, errs.Invalid("tokenizer.json: %s.pattern: missing", field)
	}
	var src string
	switch {
	case c.Pattern.Regex != nil:
		src = *c.Pattern.Regex
		if sc := scannerFor(src); sc != nil && !removed {
			return splitWith(sc), nil
		}
	case c.Pattern.String != nil && *c.Pattern.String != "":
		src = regexp.QuoteMeta(*c.Pattern.String)
	default:
		return nil, errs.Invalid("tokenizer.json: %s.pattern: want String or Regex", field)
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, errs.Invalid("tokenizer.json: %s.pattern.Regex: %q is not supported: %v", field, src, err)
	}
	return splitRegexp(re, removed), nil
}

func metaspaceOptions(c *component) (repl, scheme string, split bool) {
	repl = c.Replacement
	if repl == "" {
		repl = "▁"
	}
	scheme = c.PrependScheme
	if scheme == "" {
		scheme = prependAlways
		if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
			scheme = prependNever
		}
	}
	split = c.Split == nil || *c.Split
	return repl, scheme, split
}

// buildDecoder turns a decoder component into steps. No decoder joins the
// tokens with spaces, as Hugging Face does.
func buildDecoder(c *component, field string) ([]decodeStep, error) {
	if c == nil {
		return []decodeStep{func(toks []string) []string { return []string{strings.Join(toks, " ")} }}, nil
	}
	switch c.Type {
	case "Sequence":
		var out []decodeStep
		for i, raw := range c.Decoders {
			f := fmt.Sprintf("%s.decoders[%d]", field, i)
			sub, err := parseComponent(raw, f)
			if err != nil {
				return nil, err
			}
			if sub == nil {
				continue
			}
			steps, err := buildDecoder(sub, f)
			if err != nil {
				return nil, err
			}
			out = append(out, steps...)
		}
		return out, nil
	case "ByteLevel":
		return []decodeStep{decodeByteLevel}, nil
	case "Replace":
		f, err := replacer(c, field)
		if err != nil {
			return nil, err
		}
		return []decodeStep{func(toks []string) []string {
			for i := range toks {
				toks[i] = f(toks[i])
			}
			return toks
		}}, nil
	case "ByteFallback":
		return []decodeStep{decodeByteFallback}, nil
	case "Fuse":
		return []decodeStep{func(toks []string) []string { return []string{strings.Join(toks, "")} }}, nil
	case "Strip":
		return []decodeStep{stripStep(c.Content, c.Start, c.Stop)}, nil
	case "Metaspace":
		repl, scheme, _ := metaspaceOptions(c)
		return []decodeStep{func(toks []string) []string {
			for i := range toks {
				toks[i] = strings.ReplaceAll(toks[i], repl, " ")
				if i == 0 && scheme != prependNever {
					toks[i] = strings.TrimPrefix(toks[i], " ")
				}
			}
			return toks
		}}, nil
	}
	return nil, unsupported(field, "decoder", c.Type)
}

// decodeByteLevel maps byte-level characters back to bytes; a token with a
// character outside the table (an added token) is kept as it is.
func decodeByteLevel(toks []string) []string {
	var buf []byte
	for _, t := range toks {
		n := len(buf)
		ok := true
		for _, r := range t {
			b, in := byteLevelTable.bytes[r]
			if !in {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:n], t...)
		}
	}
	return []string{strings.ToValidUTF8(string(buf), "\uFFFD")}
}

// decodeByteFallback turns runs of <0xNN> tokens into text; an invalid
// UTF-8 run becomes one U+FFFD per byte.
func decodeByteFallback(toks []string) []string {
	out := make([]string, 0, len(toks))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range toks {
		if len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>' {
			if b, err := strconv.ParseUint(t[3:5], 16, 8); err == nil {
				pending = append(pending, byte(b))
				continue
			}
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// stripStep removes up to start leading and stop trailing copies of
// content from every token.
func stripStep(content string, start, stop int) decodeStep {
	return func(toks []string) []string {
		if content == "" {
			return toks
		}
		for i, t := range toks {
			for n := 0; n < start && strings.HasPrefix(t, content); n++ {
				t = t[len(content):]
			}
			for n := 0; n < stop && strings.HasSuffix(t, content); n++ {
				t = t[:len(t)-len(content)]
			}
			toks[i] = t
		}
		return toks
	}
}
