package expr

import (
	"fmt"
	"strings"
)

// javaLayout translates a Java date pattern (SimpleDateFormat letters, as Siddhi's time:
// functions take them) into a Go time layout. It supports the letters real patterns use:
// y, M, d, H, h, m, s, SSS (after '.' or ','), E, a, D (as DDD), z, Z, X and quoted
// literal text ('T', ”). Letters Go cannot express the same way (unpadded H, S or SS
// alone, G, u, w, W, F, k, K) and literal text that Go would read as a layout element
// are refused with an error naming them.
func javaLayout(pattern string) (string, error) { return translateJava(pattern, false) }

// javaParseLayout is javaLayout for reading dates, as leniently as Java reads them:
// numbers may have fewer digits than the pattern letters (2014-3-1 for yyyy-MM-dd), and
// without an am/pm marker h and hh read 0 to 23.
func javaParseLayout(pattern string) (string, error) { return translateJava(pattern, true) }

func translateJava(pattern string, parse bool) (string, error) {
	ampm := strings.Contains(pattern, "a")
	var b strings.Builder
	for i := 0; i < len(pattern); {
		c := pattern[i]
		if c == '\'' {
			// Quoted literal; '' is a quote.
			j := i + 1
			if j < len(pattern) && pattern[j] == '\'' {
				b.WriteByte('\'')
				i += 2
				continue
			}
			var lit strings.Builder
			for {
				if j >= len(pattern) {
					return "", fmt.Errorf("date pattern %q: unterminated quote", pattern)
				}
				if pattern[j] == '\'' {
					if j+1 < len(pattern) && pattern[j+1] == '\'' {
						lit.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				lit.WriteByte(pattern[j])
				j++
			}
			if err := literalOK(pattern, lit.String()); err != nil {
				return "", err
			}
			b.WriteString(lit.String())
			i = j + 1
			continue
		}
		if !isASCIILetter(c) {
			if err := literalOK(pattern, string(c)); err != nil {
				return "", err
			}
			b.WriteByte(c)
			i++
			continue
		}
		n := 1
		for i+n < len(pattern) && pattern[i+n] == c {
			n++
		}
		el, err := javaElement(pattern, c, n, i > 0 && (pattern[i-1] == '.' || pattern[i-1] == ','))
		if err == nil && parse {
			el = lenient(el, ampm)
		}
		if err != nil {
			return "", err
		}
		b.WriteString(el)
		i += n
	}
	return b.String(), nil
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// javaElement is the Go layout element for n repetitions of pattern letter c.
func javaElement(pattern string, c byte, n int, afterPoint bool) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("date pattern %q: %q is not supported%s", pattern, strings.Repeat(string(c), n), why)
	}
	switch c {
	case 'y':
		if n == 2 {
			return "06", nil
		}
		return "2006", nil
	case 'M':
		switch {
		case n == 1:
			return "1", nil
		case n == 2:
			return "01", nil
		case n == 3:
			return "Jan", nil
		}
		return "January", nil
	case 'd':
		if n == 1 {
			return "2", nil
		}
		if n == 2 {
			return "02", nil
		}
	case 'H':
		if n == 2 {
			return "15", nil
		}
		return bad(": write HH")
	case 'h':
		if n == 1 {
			return "3", nil
		}
		if n == 2 {
			return "03", nil
		}
	case 'm':
		if n == 1 {
			return "4", nil
		}
		if n == 2 {
			return "04", nil
		}
	case 's':
		if n == 1 {
			return "5", nil
		}
		if n == 2 {
			return "05", nil
		}
	case 'S':
		if n == 3 && afterPoint {
			return "000", nil
		}
		return bad(": milliseconds must be written SSS after '.' or ','")
	case 'E':
		if n >= 4 {
			return "Monday", nil
		}
		return "Mon", nil
	case 'a':
		return "PM", nil
	case 'D':
		if n == 3 {
			return "002", nil
		}
		return bad(": write DDD")
	case 'z':
		if n < 4 {
			return "MST", nil
		}
	case 'Z':
		return "-0700", nil
	case 'X':
		switch n {
		case 1:
			return "Z07", nil
		case 2:
			return "Z0700", nil
		case 3:
			return "Z07:00", nil
		}
	}
	return bad("")
}

// lenient turns a fixed-width Go element into one that reads 1 or 2 digits.
func lenient(el string, ampm bool) string {
	switch el {
	case "01":
		return "1"
	case "02":
		return "2"
	case "03", "3":
		if !ampm {
			return "15"
		}
		return "3"
	case "04":
		return "4"
	case "05":
		return "5"
	}
	return el
}

// literalOK refuses literal text that Go would read as a layout element.
func literalOK(pattern, lit string) error {
	for _, tok := range []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "Jan", "Mon", "MST", "PM", "pm", "Z07", "_"} {
		if strings.Contains(lit, tok) {
			return fmt.Errorf("date pattern %q: literal text %q is not supported", pattern, lit)
		}
	}
	return nil
}
