// Imported first by main.ts, so it runs before any other module of the window is
// evaluated: libraries that read navigator.language while loading (uPlot) see a
// usable tag. See locale.ts for why WebKitGTK needs this.
import { repairNavigatorLanguage } from './locale';

repairNavigatorLanguage();
