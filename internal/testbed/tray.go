package testbed

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Watcher plays the desktop's org.kde.StatusNotifierWatcher on a private bus: tray apps register their
// StatusNotifierItem with it, and a test then reads and clicks the item's menu through com.canonical.dbusmenu,
// exactly as a panel would. Safe for concurrent use.
type Watcher struct {
	bus  *Bus
	conn *dbus.Conn

	mu    sync.Mutex
	cond  *sync.Cond
	items []TrayItem
}

// TrayItem is one registered StatusNotifierItem: the unique bus name that registered it and its path.
type TrayItem struct {
	Sender string
	Path   dbus.ObjectPath
}

// MenuItem is one entry of a tray menu, as dbusmenu's GetLayout reports it. IDs change whenever the app
// rebuilds its menu, so tests find items by Label.
type MenuItem struct {
	ID       int32
	Label    string
	Enabled  bool
	Toggle   string // "checkmark" for check items, "" otherwise
	Checked  bool
	Children []MenuItem
}

// NewWatcher claims org.kde.StatusNotifierWatcher on bus and records registrations.
func NewWatcher(t testing.TB, bus *Bus) *Watcher {
	t.Helper()
	w := &Watcher{bus: bus, conn: bus.Connect(t)}
	w.cond = sync.NewCond(&w.mu)
	if err := w.conn.Export(watcherMethods{w}, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatalf("watcher: export: %v", err)
	}
	reply, err := w.conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("watcher: claim org.kde.StatusNotifierWatcher: reply %v, %v", reply, err)
	}
	return w
}

// watcherMethods holds the exported D-Bus methods, so Watcher's own methods stay off the bus.
type watcherMethods struct{ w *Watcher }

// RegisterStatusNotifierItem is called by tray apps; service is an object path or a bus name.
func (m watcherMethods) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	item := TrayItem{Sender: string(sender), Path: "/StatusNotifierItem"}
	if strings.HasPrefix(service, "/") {
		item.Path = dbus.ObjectPath(service)
	} else if service != "" {
		item.Sender = service
	}
	m.w.mu.Lock()
	m.w.items = append(m.w.items, item)
	m.w.cond.Broadcast()
	m.w.mu.Unlock()
	return nil
}

// RegisterStatusNotifierHost is part of the interface; the watcher itself is the only host here.
func (m watcherMethods) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

// WaitItem waits up to timeout for a tray item to register and returns the latest one.
func (w *Watcher) WaitItem(t testing.TB, timeout time.Duration) TrayItem {
	t.Helper()
	return w.waitItems(t, 1, timeout)
}

// Registered is how many items have registered so far (items are never forgotten).
func (w *Watcher) Registered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.items)
}

// WaitNewItem waits for an item registered after the first n (see Registered) and returns it: a
// restarted app's, not the one that went away.
func (w *Watcher) WaitNewItem(t testing.TB, n int, timeout time.Duration) TrayItem {
	t.Helper()
	return w.waitItems(t, n+1, timeout)
}

func (w *Watcher) waitItems(t testing.TB, n int, timeout time.Duration) TrayItem {
	t.Helper()
	timer := time.AfterFunc(timeout, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.items) < n {
		if !time.Now().Before(deadline) {
			t.Fatalf("no tray item registered within %v", timeout)
		}
		w.cond.Wait()
	}
	return w.items[len(w.items)-1]
}

// Property reads a StatusNotifierItem property (e.g. "ToolTip", "Status", "Title") of item.
func (w *Watcher) Property(t testing.TB, item TrayItem, name string) dbus.Variant {
	t.Helper()
	v, err := w.conn.Object(item.Sender, item.Path).GetProperty("org.kde.StatusNotifierItem." + name)
	if err != nil {
		t.Fatalf("tray item property %s: %v", name, err)
	}
	return v
}

// Menu reads the item's whole menu through dbusmenu GetLayout.
func (w *Watcher) Menu(t testing.TB, item TrayItem) []MenuItem {
	t.Helper()
	var revision uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	obj := w.conn.Object(item.Sender, item.Path+"/menu")
	err := obj.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&revision, &root)
	if err != nil {
		t.Fatalf("tray menu GetLayout: %v", err)
	}
	return parseMenu(root.Children)
}

func parseMenu(children []dbus.Variant) []MenuItem {
	var items []MenuItem
	for _, c := range children {
		fields, ok := c.Value().([]any)
		if !ok || len(fields) != 3 {
			continue
		}
		id, _ := fields[0].(int32)
		props, _ := fields[1].(map[string]dbus.Variant)
		sub, _ := fields[2].([]dbus.Variant)
		it := MenuItem{ID: id, Enabled: true, Children: parseMenu(sub)}
		if v, ok := props["label"]; ok {
			it.Label, _ = v.Value().(string)
		}
		if v, ok := props["enabled"]; ok {
			it.Enabled, _ = v.Value().(bool)
		}
		if v, ok := props["toggle-type"]; ok {
			it.Toggle, _ = v.Value().(string)
		}
		if v, ok := props["toggle-state"]; ok {
			s, _ := v.Value().(int32)
			it.Checked = s == 1
		}
		if v, ok := props["type"]; ok && v.Value() == "separator" {
			continue
		}
		items = append(items, it)
	}
	return items
}

// Find returns the first item, at any depth, whose label starts with prefix.
func Find(items []MenuItem, prefix string) (MenuItem, bool) {
	for _, it := range items {
		if strings.HasPrefix(it.Label, prefix) {
			return it, true
		}
		if found, ok := Find(it.Children, prefix); ok {
			return found, true
		}
	}
	return MenuItem{}, false
}

// Click sends the dbusmenu "clicked" event for the item labelled with prefix, as a panel does when the
// user picks it. It reads the menu first because IDs change on every rebuild.
func (w *Watcher) Click(t testing.TB, item TrayItem, prefix string) {
	t.Helper()
	mi, ok := Find(w.Menu(t, item), prefix)
	if !ok {
		t.Fatalf("no tray menu item labelled %q; menu: %s", prefix, fmt.Sprint(w.Menu(t, item)))
	}
	obj := w.conn.Object(item.Sender, item.Path+"/menu")
	call := obj.Call("com.canonical.dbusmenu.Event", 0, mi.ID, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil {
		t.Fatalf("click %q: %v", prefix, call.Err)
	}
}
