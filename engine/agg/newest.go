package agg

// ShardRow is a row together with the shard it belongs to.
type ShardRow struct {
	Shard string
	Row   *Row
}

// Newest keeps, for every primary key (shard, arrival bucket, event bucket, group), the row
// with the greatest Index: a store may hold an older version of a row that memory has since
// changed, and the same row may come from several sources. The result is ready for
// Plan.Run, which sums rows, so no key may appear twice in it. Order follows first
// appearance.
func Newest(rows ...[]ShardRow) []*Row {
	type pk struct {
		shard    string
		arr, evt int64
		group    string
	}
	at := map[pk]int{}
	var out []*Row
	for _, set := range rows {
		for _, sr := range set {
			k := pk{sr.Shard, sr.Row.AggTimestamp, sr.Row.EventTimestamp, sr.Row.key}
			if i, ok := at[k]; ok {
				if sr.Row.Index > out[i].Index {
					out[i] = sr.Row
				}
				continue
			}
			at[k] = len(out)
			out = append(out, sr.Row)
		}
	}
	return out
}
