import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import EventLog from './EventLog.svelte';
import type { MonitorLogEntry } from '../../lib/monitor';

const entries: MonitorLogEntry[] = [
  { seq: 1, at_ms: 1000, source: 'llm', kind: 'llm_healthy', level: 'ok', text: 'LLM default: loading → healthy' },
  { seq: 2, at_ms: 2000, source: 'orchestrator', kind: 'offloaded', level: 'warn', text: 'Offloaded default' },
  { seq: 3, at_ms: 3000, source: 'orchestrator', kind: 'reloaded', level: 'ok', text: 'Reloaded default' },
];

describe('EventLog', () => {
  it('shows the newest first, coloured by level, orchestrator events tagged by kind', () => {
    render(EventLog, { entries });
    const lines = screen.getAllByTestId('monitor-log-line');
    expect(lines).toHaveLength(3);
    expect(lines[0].dataset.kind).toBe('reloaded');
    expect(lines[1].classList.contains('warn')).toBe(true);
    const kinds = screen.getAllByTestId('orchestrator-event').map((node) => node.dataset.kind);
    expect(kinds).toEqual(['reloaded', 'offloaded']);
  });
});
