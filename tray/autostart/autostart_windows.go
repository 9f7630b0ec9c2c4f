package autostart

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

// Windows starts the programs named under HKCU\Software\Microsoft\Windows\CurrentVersion\Run at login.
const runKey = `Software\Microsoft\Windows\CurrentVersion\Run`

func set(cfg Config, on bool) error {
	k, _, err := registry.CreateKey(registry.CURRENT_USER, runKey, registry.SET_VALUE|registry.QUERY_VALUE)
	if err != nil {
		return fmt.Errorf("autostart: open Run key: %w", err)
	}
	defer k.Close()
	if !on {
		if err := k.DeleteValue(Name); err != nil && !errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf("autostart: %w", err)
		}
		return nil
	}
	// Quoted, so a path with spaces (C:\Program Files\…) is one argument.
	if err := k.SetStringValue(Name, `"`+cfg.Exec+`"`); err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	return nil
}

func isSet(Config) (bool, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("autostart: open Run key: %w", err)
	}
	defer k.Close()
	_, _, err = k.GetStringValue(Name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, registry.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("autostart: %w", err)
}
