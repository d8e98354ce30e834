package expr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

var fastAttrs = []siddhiql.Attribute{
	{Name: "s", Type: siddhiql.TypeString}, {Name: "i", Type: siddhiql.TypeInt}, {Name: "l", Type: siddhiql.TypeLong},
	{Name: "f", Type: siddhiql.TypeFloat}, {Name: "d", Type: siddhiql.TypeDouble}, {Name: "b", Type: siddhiql.TypeBool},
}

// slowDecode is the general path (what httpapi falls back to): encoding/json, then DecodeJSON.
func slowDecode(attrs []siddhiql.Attribute, body []byte) ([]Row, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("empty")
	}
	var raws []json.RawMessage
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, err
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			raws = append(raws, raw)
		}
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("no events")
	}
	rows := make([]Row, len(raws))
	for i, raw := range raws {
		row, err := DecodeJSON(attrs, raw)
		if err != nil {
			return nil, err
		}
		rows[i] = row
	}
	return rows, nil
}

func sameValue(a, b Value) bool {
	return a.T == b.T && a.I == b.I && a.S == b.S && (a.F == b.F || math.IsNaN(a.F) && math.IsNaN(b.F)) && math.Signbit(a.F) == math.Signbit(b.F)
}

// checkFast fails when DecodeEvents accepts a body that the general path refuses or decodes
// differently; it reports whether the fast path took the body.
func checkFast(t *testing.T, attrs []siddhiql.Attribute, body []byte) bool {
	t.Helper()
	fast, ok := DecodeEvents(attrs, body)
	if !ok {
		if fast != nil {
			t.Fatalf("%q: rows returned with ok false", body)
		}
		return false
	}
	slow, err := slowDecode(attrs, body)
	if err != nil {
		t.Fatalf("%q: fast path accepted what the general path refuses: %v", body, err)
	}
	if len(fast) != len(slow) {
		t.Fatalf("%q: %d rows, general path %d", body, len(fast), len(slow))
	}
	for i := range fast {
		if len(fast[i]) != len(slow[i]) || cap(fast[i]) != len(attrs) {
			t.Fatalf("%q: row %d has %d values (cap %d), general path %d", body, i, len(fast[i]), cap(fast[i]), len(slow[i]))
		}
		for j := range fast[i] {
			if !sameValue(fast[i][j], slow[i][j]) {
				t.Fatalf("%q: row %d value %d is %+v, general path %+v", body, i, j, fast[i][j], slow[i][j])
			}
		}
	}
	return true
}

func TestDecodeEventsMatchesGeneralPath(t *testing.T) {
	taken := []string{
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5e3,"b":true}`,
		` {"s":"x","i":7,"l":-10,"f":1.5,"d":2.5e3,"b":true}` + "\n" + `{"b":false,"d":-0,"f":1E-3,"l":0,"i":-2147483648,"s":""}` + "\r\n",
		`[{"s":"héllo ☃","i":2147483647,"l":9223372036854775807,"f":3.4e38,"d":1e308,"b":false}]`,
		`[ {"s":null,"i":null,"l":null,"f":null,"d":null,"b":null} , {"s":"a","i":1,"l":2,"f":3,"d":4,"b":true} ]`,
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":true}{"s":"y","i":8,"l":-11,"f":1.5,"d":2.5,"b":false}`,
		"\t{ \"s\" : \"{[\" ,\n \"i\" : 0 , \"l\" : -0 , \"f\" : 0.0 , \"d\" : -0.0 , \"b\" : true }\n\n",
	}
	for _, b := range taken {
		if !checkFast(t, fastAttrs, []byte(b)) {
			t.Errorf("%q: fast path declined a common body", b)
		}
	}
	declined := []string{
		``, `   `, `[]`, `{}`, `null`, `[null]`, `1`,
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5}`,                          // missing b
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":true,"z":1}`,           // unknown key
		`{"s":"x","s":"y","i":7,"l":-10,"f":1.5,"d":2.5,"b":true}`,         // repeated key
		`{"s":"x\"","i":7,"l":-10,"f":1.5,"d":2.5,"b":true}`,               // escape
		`{"\u0073":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":true}`,            // escaped key
		`{"s":"x","i":7.0,"l":-10,"f":1.5,"d":2.5,"b":true}`,               // int with a fraction
		`{"s":"x","i":2147483648,"l":-10,"f":1.5,"d":2.5,"b":true}`,        // int out of range
		`{"s":"x","i":7,"l":9223372036854775808,"f":1.5,"d":2.5,"b":true}`, // long out of range
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":1e309,"b":true}`,               // infinite
		`{"s":"x","i":07,"l":-10,"f":1.5,"d":2.5,"b":true}`,                // leading zero
		`{"s":"x","i":7,"l":-10,"f":.5,"d":2.5,"b":true}`,
		`{"s":"x","i":7,"l":-10,"f":1.,"d":2.5,"b":true}`,
		`{"s":"x","i":7,"l":-10,"f":1e,"d":2.5,"b":true}`,
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":tru}`,
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":truex}`,
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":1}`,
		`{"s":1,"i":7,"l":-10,"f":1.5,"d":2.5,"b":true}`,
		`{"s":"x","i":"7","l":-10,"f":1.5,"d":2.5,"b":true}`,
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":true,}`,
		`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":true`,
		`[{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":true}`,
		`[{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":true},]`,
		`[{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":true}] x`,
		"{\"s\":\"a\xffb\",\"i\":7,\"l\":-10,\"f\":1.5,\"d\":2.5,\"b\":true}", // invalid UTF-8
		"{\"s\":\"a\tb\",\"i\":7,\"l\":-10,\"f\":1.5,\"d\":2.5,\"b\":true}",   // control character
		`{"s":{"x":1},"i":7,"l":-10,"f":1.5,"d":2.5,"b":true}`,
		"\u00a0" + `{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5,"b":true}`,
	}
	for _, b := range declined {
		if checkFast(t, fastAttrs, []byte(b)) {
			t.Errorf("%q: fast path took a body it should leave to the general path", b)
		}
	}
	// Object attributes are always left to the general path.
	if _, ok := DecodeEvents([]siddhiql.Attribute{{Name: "o", Type: siddhiql.TypeObject}}, []byte(`{"o":1}`)); ok {
		t.Error("object attribute decoded by the fast path")
	}
}

func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(`{"s":"x","i":7,"l":-10,"f":1.5,"d":2.5e3,"b":true}`))
	f.Add([]byte(`[{"s":null,"i":null,"l":null,"f":null,"d":null,"b":null},{"s":"a","i":1,"l":2,"f":3,"d":4,"b":false}]`))
	f.Add([]byte("{\"b\":false,\"d\":-0,\"f\":1E-3,\"l\":0,\"i\":-2147483648,\"s\":\"\"}\n{\"s\":\"x\",\"i\":7,\"l\":-10,\"f\":1.5,\"d\":2.5,\"b\":true}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFast(t, fastAttrs, body)
	})
}

func tradeBody(n int) ([]siddhiql.Attribute, []byte) {
	attrs := []siddhiql.Attribute{{Name: "symbol", Type: siddhiql.TypeString}, {Name: "price", Type: siddhiql.TypeDouble},
		{Name: "quantity", Type: siddhiql.TypeLong}, {Name: "timestamp", Type: siddhiql.TypeLong}}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"symbol":"sym-%d","price":%d.%02d,"quantity":%d,"timestamp":%d}`+"\n", i%1000, 100+i%50, i%100, i%20, 1514783400000+int64(i))
	}
	return attrs, []byte(b.String())
}

// BenchmarkDecodeEvents decodes a 1000-event NDJSON TradeStream body.
func BenchmarkDecodeEvents(b *testing.B) {
	attrs, body := tradeBody(1000)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := DecodeEvents(attrs, body); !ok {
				b.Fatal("declined")
			}
		}
		b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := slowDecode(attrs, body); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
	})
}

func TestAppendJSONStringMatchesMarshal(t *testing.T) {
	for _, s := range []string{"", "wso2", "a b~", "a\"b", `a\b`, "<script>", "a&b", "tab\t", "nl\n", "\x00", "\x7f", "é", "☃", "\u2028", "a\xffb", "\x1f"} {
		checkJSONString(t, s)
	}
	for c := range 256 {
		checkJSONString(t, "x"+string(rune(c))+"y")
		checkJSONString(t, "x"+string([]byte{byte(c)})+"y")
	}
}

func checkJSONString(t *testing.T, s string) {
	t.Helper()
	want, _ := json.Marshal(s)
	if got := String(s).AppendJSON([]byte("pre")); string(got) != "pre"+string(want) {
		t.Fatalf("%q: got %s, want %s", s, got[3:], want)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("wso2")
	f.Add("a<b>\"\\\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

// BenchmarkAppendJSONObject renders an output row as the outbox does.
func BenchmarkAppendJSONObject(b *testing.B) {
	attrs := []siddhiql.Attribute{{Name: "symbol", Type: siddhiql.TypeString}, {Name: "t", Type: siddhiql.TypeLong}}
	row := Row{String("sym-123"), Long(4242)}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = AppendJSONObject(buf[:0], attrs, row)
	}
}
