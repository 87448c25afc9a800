import { MAX_NAME_LENGTH } from "./names";

/** The input for the name others see. */
export function NameField({
  value,
  onChange,
  autoFocus = false,
}: {
  value: string;
  onChange: (name: string) => void;
  autoFocus?: boolean;
}) {
  return (
    <label className="field">
      Your name
      <input
        data-testid="name-input"
        value={value}
        maxLength={MAX_NAME_LENGTH}
        autoComplete="nickname"
        autoFocus={autoFocus}
        onChange={(event) => onChange(event.target.value)}
      />
    </label>
  );
}
