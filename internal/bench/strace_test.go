//go:build linux

package bench

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// syscallRow is one row of `strace -c`'s table.
type syscallRow struct {
	name   string
	calls  int64
	errors int64
}

// straceTable is `strace -c`'s table: the rows, most frequent first, and the total of calls.
type straceTable struct {
	rows  []syscallRow
	total int64
}

// parseStrace reads the table `strace -c` writes. Its columns are found from the dashed rule under
// the header, because a blank cell (no errors; no usecs/call on the total row of some versions)
// leaves fewer fields than columns.
func parseStrace(text string) (straceTable, error) {
	lines := strings.Split(text, "\n")
	var header string
	var spans [][2]int
	for i, line := range lines {
		if i > 0 && strings.HasPrefix(line, "------") {
			header, spans = lines[i-1], dashSpans(line)
			lines = lines[i+1:]
			break
		}
	}
	if spans == nil {
		return straceTable{}, errors.New("strace -c: no table")
	}
	col := map[string]int{}
	for j, sp := range spans {
		col[strings.TrimSpace(cell(header, sp))] = j
	}
	ci, ok1 := col["calls"]
	ei, ok2 := col["errors"]
	ni, ok3 := col["syscall"]
	if !ok1 || !ok2 || !ok3 {
		return straceTable{}, fmt.Errorf("strace -c: unexpected header %q", header)
	}
	num := func(s string) (int64, error) {
		if s = strings.TrimSpace(s); s == "" {
			return 0, nil
		}
		return strconv.ParseInt(s, 10, 64)
	}
	var t straceTable
	for _, line := range lines {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "------") {
			continue
		}
		name := strings.TrimSpace(line[min(spans[ni][0], len(line)):])
		calls, err1 := num(cell(line, spans[ci]))
		errs, err2 := num(cell(line, spans[ei]))
		if err := errors.Join(err1, err2); err != nil {
			return straceTable{}, fmt.Errorf("strace -c: row %q: %w", line, err)
		}
		if name == "total" {
			t.total = calls
			continue
		}
		t.rows = append(t.rows, syscallRow{name: name, calls: calls, errors: errs})
	}
	if t.total == 0 {
		return straceTable{}, errors.New("strace -c: no total row")
	}
	slices.SortStableFunc(t.rows, func(a, b syscallRow) int { return cmp.Compare(b.calls, a.calls) })
	return t, nil
}

// dashSpans returns the [start, end) columns of each run of dashes in rule.
func dashSpans(rule string) [][2]int {
	var spans [][2]int
	for i := 0; i < len(rule); {
		if rule[i] != '-' {
			i++
			continue
		}
		j := i
		for j < len(rule) && rule[j] == '-' {
			j++
		}
		spans = append(spans, [2]int{i, j})
		i = j
	}
	return spans
}

// cell is line's text in the columns of span (empty past the line's end).
func cell(line string, span [2]int) string {
	if span[0] >= len(line) {
		return ""
	}
	return line[span[0]:min(span[1], len(line))]
}
