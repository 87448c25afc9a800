import { useState } from "react";
import { randomName, storedName, storeName } from "./names";

/** The name others see: stored in localStorage (`duet.name`), a friendly random one at first. */
export function useDisplayName(): [string, (name: string) => void] {
  const [name, setName] = useState(() => {
    const stored = storedName();
    if (stored) {
      return stored;
    }
    const fresh = randomName();
    storeName(fresh);
    return fresh;
  });
  return [
    name,
    (next: string) => {
      setName(next);
      if (next.trim()) {
        storeName(next.trim());
      }
    },
  ];
}

export function NameField({ onCommit }: { onCommit?: (name: string) => void }) {
  const [name, setName] = useDisplayName();
  return (
    <label className="name-field">
      Your name
      <input
        value={name}
        maxLength={64}
        onChange={(event) => setName(event.target.value)}
        onBlur={() => onCommit?.(name.trim())}
      />
    </label>
  );
}
