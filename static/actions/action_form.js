'use strict';
// The action form's small enhancements; the form works without them.
// - The wand: each header/parameter row gets a button that turns its value into a
//   magic field picked from the conversation-context catalogue, and back.
// - The body section hides for methods that send no body.
(function () {
  const ATTRIBUTE_PREFIX = 'contact.attributes.';

  function enhanceRow(row) {
    if (row.dataset.wand || row.classList.contains('empty-form')) {
      return;
    }
    const kind = row.querySelector('select[name$="-kind"]');
    const value = row.querySelector('input[name$="-value"]');
    const magic = row.querySelector('select[name$="-magic_field"]');
    if (!kind || !value || !magic) {
      return;
    }
    row.dataset.wand = '1';
    // An empty static value already means "the AI fills it"; one switch is enough.
    if (kind.value === 'ai') {
      kind.value = 'static';
    }
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'wand';
    // A wand with a spark, drawn inline so it shows on every system font.
    button.innerHTML =
      '<svg width="16" height="16" viewBox="0 0 16 16" aria-hidden="true">' +
      '<path d="M2 14 L10 6" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>' +
      '<path d="M11.5 1.5 L12.3 3.7 L14.5 4.5 L12.3 5.3 L11.5 7.5 L10.7 5.3 L8.5 4.5 ' +
      'L10.7 3.7 Z" fill="currentColor"/></svg>';
    button.title = 'Fill from the conversation (magic field)';
    const cell = value.closest('td') || value.parentNode;
    cell.appendChild(magic);
    cell.appendChild(button);

    function sync() {
      const isMagic = kind.value === 'magic';
      const needsKey = isMagic && magic.value === ATTRIBUTE_PREFIX;
      button.classList.toggle('active', isMagic);
      button.setAttribute('aria-pressed', isMagic ? 'true' : 'false');
      button.setAttribute('aria-label', isMagic ? 'Use a static value' : 'Use a magic field');
      magic.hidden = !isMagic;
      value.hidden = isMagic && !needsKey;
      value.placeholder = needsKey
        ? 'attribute key, e.g. plan'
        : 'Static value; empty = the AI fills it';
    }
    button.addEventListener('click', function () {
      kind.value = kind.value === 'magic' ? 'static' : 'magic';
      if (kind.value === 'magic') {
        value.value = '';
        magic.focus();
      }
      sync();
    });
    magic.addEventListener('change', sync);
    sync();
  }

  function enhanceAll() {
    document.querySelectorAll('.value-rows').forEach(function (group) {
      group.classList.add('js-wand');
      group.querySelectorAll('tr.form-row').forEach(enhanceRow);
    });
  }

  function watchMethod() {
    const method = document.getElementById('id_method');
    const body = document.querySelector('fieldset.action-body');
    const schema = document.getElementById('id_body_schema');
    if (!method || !body || !schema) {
      return;
    }
    function sync() {
      const sendsBody = ['POST', 'PUT', 'PATCH'].includes(method.value);
      const hasErrors = body.querySelector('.errorlist') !== null;
      body.hidden = !sendsBody && !schema.value.trim() && !hasErrors;
    }
    method.addEventListener('change', sync);
    sync();
  }

  document.addEventListener('formset:added', function (event) {
    enhanceRow(event.target);
  });
  document.addEventListener('DOMContentLoaded', function () {
    enhanceAll();
    watchMethod();
  });
})();
