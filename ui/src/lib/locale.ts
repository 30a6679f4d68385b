// WebKitGTK derives `navigator.language` from the C library's locale by cutting it at
// the dot, so under `C.UTF-8` (containers, minimal installs, this project's CI) the
// window reports "C", which is no BCP 47 tag: `new Intl.NumberFormat(navigator.language)`
// throws a RangeError. uPlot does exactly that when its module is evaluated, which
// left every chart undrawn. The JS engine's own default locale is valid there, so a
// window whose reported language is unusable takes that one instead.

/** Whether `tag` is a language tag that `Intl` accepts. */
export function isLanguageTag(tag: string): boolean {
  try {
    return Intl.getCanonicalLocales(tag).length === 1;
  } catch {
    return false;
  }
}

/** The JS engine's default locale without its extensions ("en-US-u-va-posix" → "en-US"). */
export function engineDefaultLanguage(): string {
  return new Intl.Locale(new Intl.NumberFormat().resolvedOptions().locale).baseName;
}

/** The usable tags among `reported`, or the engine's default when none is. */
export function usableLanguages(reported: readonly string[]): string[] {
  const usable = reported.filter(isLanguageTag);
  return usable.length > 0 ? usable : [engineDefaultLanguage()];
}

/**
 * Makes `navigator.language(s)` usable by `Intl` when the window reports a tag that
 * is not one; leaves a valid report untouched. Call before any library reads them.
 */
export function repairNavigatorLanguage(target: Navigator = navigator): void {
  const reported = target.languages.length > 0 ? target.languages : [target.language];
  if (isLanguageTag(target.language) && reported.every(isLanguageTag)) return;
  const languages = usableLanguages(reported);
  const language = isLanguageTag(target.language) ? target.language : languages[0];
  Object.defineProperty(target, 'language', { value: language, configurable: true });
  Object.defineProperty(target, 'languages', { value: Object.freeze(languages), configurable: true });
}
