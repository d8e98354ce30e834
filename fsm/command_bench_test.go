package fsm

import (
	"fmt"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// BenchmarkCommandDecodeSymbols decodes a 1000-event TradeStream batch whose events carry
// 8, 100 or 1000 distinct symbols: what interning the strings of a command saves, and what
// it costs when few repeat.
func BenchmarkCommandDecodeSymbols(b *testing.B) {
	for _, n := range []int{8, 100, 1000} {
		b.Run(fmt.Sprintf("symbols=%d", n), func(b *testing.B) {
			evs := make([]expr.Row, 1000)
			for i := range evs {
				evs[i] = expr.Row{expr.String(fmt.Sprintf("SYM%05d", i*7919%n)), expr.Double(100 + float64(i%977)/7),
					expr.Long(int64(1 + i%50)), expr.Long(t0 + int64(i)*13)}
			}
			c := batch(t0, part("TradeStream", "bench-producer", 1, evs...))
			enc, err := c.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			var d Command
			for b.Loop() {
				if err := d.UnmarshalBinary(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
