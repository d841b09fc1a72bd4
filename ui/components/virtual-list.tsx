/**
 * A table whose rows are drawn only where they can be seen: fixed-height
 * rows inside a scrolling box, the box as tall as all rows, the visible
 * slice (plus a margin) moved into place. 1,000 or 10,000 rows cost the
 * same few dozen elements. It keeps table semantics for screen readers
 * (role table/row/cell, aria-rowcount and aria-rowindex, so "row 512 of
 * 1000" is read right), and the box is focusable so the keyboard scrolls it.
 */
import type { ComponentChildren, VNode } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';

export interface Column {
  /** The header's content (a sort button, a label). */
  header: ComponentChildren;
  /** CSS grid track: `2fr`, `6em`. */
  width: string;
  /** aria-sort of the header cell. */
  sort?: 'ascending' | 'descending' | 'none';
  /** Numbers: the header sits at the end, over right-aligned cells. */
  numeric?: boolean;
}

export interface VirtualTableProps<T> {
  label: string;
  columns: Column[];
  items: readonly T[];
  rowKey: (item: T) => string;
  /** The cells of one row (each a <div role="cell">). */
  renderCells: (item: T) => VNode[];
  rowHeight?: number;
  /** Rows drawn beyond the visible ones, each side. */
  overscan?: number;
  /** Shown instead of rows when there are none. */
  empty?: ComponentChildren;
  /** The box's height (CSS). */
  height?: string;
}

export function VirtualTable<T>({ label, columns, items, rowKey, renderCells, rowHeight = 36, overscan = 10, empty, height = '60vh' }: VirtualTableProps<T>) {
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(800);
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    setViewport(el.clientHeight);
    const observer = new ResizeObserver(() => setViewport(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const template = columns.map((c) => c.width).join(' ');
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(items.length, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  const rows: VNode[] = [];
  for (let i = first; i < last; i++) {
    const item = items[i];
    rows.push(
      <div role="row" class="vrow" key={rowKey(item)} aria-rowindex={i + 2} style={{ gridTemplateColumns: template, height: `${rowHeight}px` }}>
        {renderCells(item)}
      </div>,
    );
  }
  return (
    <div class="vtable" role="table" aria-label={label} aria-rowcount={items.length + 1}>
      <div role="rowgroup">
        <div role="row" class="vrow vhead" aria-rowindex={1} style={{ gridTemplateColumns: template }}>
          {columns.map((c, i) => (
            <div role="columnheader" key={i} aria-sort={c.sort} class={c.numeric ? 'num' : undefined}>
              {c.header}
            </div>
          ))}
        </div>
      </div>
      <div
        ref={box}
        class="vbox"
        role="rowgroup"
        tabIndex={0}
        aria-label={`${label}: ${items.length} rows, scroll to see more`}
        style={{ height }}
        onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
      >
        {items.length === 0 ? (
          <p class="empty">{empty ?? 'Nothing here.'}</p>
        ) : (
          <div class="vspace" style={{ height: `${items.length * rowHeight}px` }}>
            <div class="vslice" style={{ transform: `translateY(${first * rowHeight}px)` }}>
              {rows}
            </div>
          </div>
        )}
      </div>
    </div>
  );
}

/** A sortable column header: a real button, its state in aria-sort on the cell. */
export function SortButton({ label, active, descending, onSort }: { label: string; active: boolean; descending: boolean; onSort: () => void }) {
  return (
    <button type="button" class="sort" onClick={onSort}>
      {label}
      <span aria-hidden="true">{active ? (descending ? ' ▼' : ' ▲') : ''}</span>
    </button>
  );
}
