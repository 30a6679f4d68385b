import { describe, expect, it } from 'vitest';
import { isLanguageTag, repairNavigatorLanguage, usableLanguages } from './locale';

/** A navigator reporting what WebKitGTK reports under a given C library locale. */
function reporting(language: string, languages: string[]): Navigator {
  return Object.create(Object.prototype, {
    language: { get: () => language, configurable: true },
    languages: { get: () => languages, configurable: true },
  }) as Navigator;
}

describe('navigator language repair', () => {
  it('tells language tags from locale names', () => {
    expect(isLanguageTag('en-US')).toBe(true);
    expect(isLanguageTag('de')).toBe(true);
    expect(isLanguageTag('C')).toBe(false);
    expect(isLanguageTag('en_US')).toBe(false);
  });

  it('replaces "C" (WebKitGTK under C.UTF-8) with a tag Intl accepts', () => {
    const target = reporting('C', ['C']);
    repairNavigatorLanguage(target);
    expect(isLanguageTag(target.language)).toBe(true);
    expect(target.languages).toEqual([target.language]);
    expect(() => new Intl.NumberFormat(target.language)).not.toThrow();
  });

  it('keeps the usable tags of a mixed report', () => {
    expect(usableLanguages(['C', 'fr-FR', 'en'])).toEqual(['fr-FR', 'en']);
    const target = reporting('C', ['C', 'fr-FR']);
    repairNavigatorLanguage(target);
    expect(target.language).toBe('fr-FR');
    expect(target.languages).toEqual(['fr-FR']);
  });

  it('leaves a valid report alone', () => {
    const target = reporting('de-DE', ['de-DE', 'en']);
    repairNavigatorLanguage(target);
    expect(target.language).toBe('de-DE');
    expect(target.languages).toEqual(['de-DE', 'en']);
  });
});
