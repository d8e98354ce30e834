package agg

import "github.com/tally-db/tally/engine/expr"

// AppendJSON appends the answer as Siddhi's store API renders it: {"records":[[...],...]},
// with "details" (column names and upper-case types) when details is set.
func (res *Result) AppendJSON(b []byte, details bool) []byte {
	b = append(b, `{"records":[`...)
	for i, row := range res.Rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, v := range row {
			if j > 0 {
				b = append(b, ',')
			}
			b = v.AppendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, ']')
	if details {
		b = append(b, `,"details":[`...)
		for i, c := range res.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = expr.String(c.Name).AppendJSON(b)
			b = append(b, `,"dataType":`...)
			b = expr.String(c.Type.Upper()).AppendJSON(b)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}
